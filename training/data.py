"""Build every training and validation shard the recipe needs, in parallel worker processes."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from inkwell.progress import progress
from training.fonts import HELDOUT_FONTS, TRAINING_FONTS, fetch_fonts
from training.real_lines import DEFAULT_REAL_DIR, load_real_lines
from training.shards import finished_shards, real_samples, synthetic_samples, write_shard

log = logging.getLogger(__name__)

SYNTHETIC_SHARD_LINES = 10_000
PROSE_SHARE = 0.4  # of synthetic lines: English prose, the rest form-field texts
REAL_VARIANTS = 8  # each real training line: once as scanned, seven times augmented
VALIDATION_SYNTHETIC_LINES = 1_000


@dataclass(frozen=True)
class DataPlan:
    """Where data goes and how much of it to make."""

    root: Path
    synthetic_lines: int
    height: int
    width: int
    workers: int = 2
    first_shard: int = 0  # synthetic shard i renders seed 1000 + i: a later start gives lines never rendered before
    real_dir: Path = DEFAULT_REAL_DIR

    @property
    def fonts_dir(self) -> Path:
        return self.root / "fonts"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"


def _synthetic_job(plan: DataPlan, index: int) -> int:
    fonts = fetch_fonts(plan.fonts_dir, TRAINING_FONTS)
    return write_shard(
        plan.shards_dir / f"synth-{index:04d}",
        synthetic_samples(
            fonts,
            SYNTHETIC_SHARD_LINES,
            seed=1_000 + index,
            height=plan.height,
            width=plan.width,
            prose_share=PROSE_SHARE,
        ),
    )


def _real_job(plan: DataPlan, part: int, parts: int) -> int:
    train, _, _ = load_real_lines(plan.real_dir)
    return write_shard(
        plan.shards_dir / f"real-{part:04d}",
        real_samples(train[part::parts], REAL_VARIANTS, seed=7_000 + part, height=plan.height, width=plan.width),
    )


VALIDATION_SETS = ("val-heldout-fonts-forms", "val-heldout-fonts-prose", "val-real-writers")


def build_validation(plan: DataPlan) -> None:
    """Training-time validation: form lines and English prose (the held-out book) in the
    held-out font families, and the writer-disjoint real lines (un-augmented)."""
    heldout = fetch_fonts(plan.fonts_dir, HELDOUT_FONTS)
    forms = plan.shards_dir / VALIDATION_SETS[0]
    if not forms.exists():
        write_shard(
            forms, synthetic_samples(heldout, VALIDATION_SYNTHETIC_LINES, seed=99, height=plan.height, width=plan.width)
        )
    prose = plan.shards_dir / VALIDATION_SETS[1]
    if not prose.exists():
        write_shard(
            prose,
            synthetic_samples(
                heldout,
                VALIDATION_SYNTHETIC_LINES,
                seed=97,
                height=plan.height,
                width=plan.width,
                prose_share=1.0,
                validation_prose=True,
            ),
        )
    real = plan.shards_dir / VALIDATION_SETS[2]
    if not real.exists():
        _, validation, _ = load_real_lines(plan.real_dir)
        write_shard(real, real_samples(validation, 1, seed=98, height=plan.height, width=plan.width))


def synthetic_shards(plan: DataPlan) -> range:
    """The indices of the synthetic shards ``plan`` asks for (shard i is rendered from seed 1000 + i)."""
    return range(plan.first_shard, plan.first_shard + -(-plan.synthetic_lines // SYNTHETIC_SHARD_LINES))


def build_all(plan: DataPlan) -> None:
    """Make whatever shards are missing (safe to rerun: finished shards are kept)."""
    plan.shards_dir.mkdir(parents=True, exist_ok=True)
    fetch_fonts(plan.fonts_dir, TRAINING_FONTS + list(HELDOUT_FONTS))
    build_validation(plan)
    done = {p.name for p in finished_shards(plan.shards_dir, "synth")} | {
        p.name for p in finished_shards(plan.shards_dir, "real")
    }
    real_parts = 4
    with ProcessPoolExecutor(plan.workers) as pool:
        futures = [
            pool.submit(_real_job, plan, part, real_parts)
            for part in range(real_parts)
            if f"real-{part:04d}" not in done
        ]
        futures += [
            pool.submit(_synthetic_job, plan, i) for i in synthetic_shards(plan) if f"synth-{i:04d}" not in done
        ]
        for future in progress(futures, unit=" shards", desc="data", logs=True):
            log.info("shard done: %d lines", future.result())
