"""Build every training and validation shard the recipe needs, in parallel worker processes."""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from inkwell.progress import progress
from training.fonts import HELDOUT_FONTS, TRAINING_FONTS, Font, fetch_fonts
from training.real_lines import DEFAULT_REAL_DIR, load_real_lines
from training.shards import (
    finished_shards,
    mark_line_height,
    real_samples,
    style_shares,
    synthetic_samples,
    write_shard,
)

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
    shard_lines: int = SYNTHETIC_SHARD_LINES  # smaller shards reach a training run that reads them sooner
    real_parts: int = 4  # shards the real training lines are split into (more: more of them rendered at once)
    # (style group, weight) pairs: families of a group drawn that much more often (1 where absent)
    style_weights: tuple[tuple[str, float], ...] = ()

    @property
    def fonts_dir(self) -> Path:
        return self.root / "fonts"

    @property
    def shards_dir(self) -> Path:
        return self.root / "shards"


@cache
def _fonts(fonts_dir: Path, heldout: bool = False) -> list[Font]:
    """The fonts of one side of the split, once per worker process: each Font measures its charset
    and case on first use (about 15 CPU seconds for all of them), which every shard would repeat."""
    return fetch_fonts(fonts_dir, HELDOUT_FONTS if heldout else TRAINING_FONTS)


def _synthetic_job(plan: DataPlan, index: int) -> int:
    return write_shard(
        plan.shards_dir / f"synth-{index:04d}",
        synthetic_samples(
            _fonts(plan.fonts_dir),
            plan.shard_lines,
            seed=1_000 + index,
            height=plan.height,
            width=plan.width,
            prose_share=PROSE_SHARE,
            style_weights=dict(plan.style_weights),
        ),
    )


def _real_job(plan: DataPlan, part: int, parts: int) -> int:
    train, _, _ = load_real_lines(plan.real_dir)
    return write_shard(
        plan.shards_dir / f"real-{part:04d}",
        real_samples(train[part::parts], REAL_VARIANTS, seed=7_000 + part, height=plan.height, width=plan.width),
    )


VALIDATION_SETS = ("val-heldout-fonts-forms", "val-heldout-fonts-prose", "val-real-writers")


def _validation_job(plan: DataPlan, name: str) -> int:
    """One training-time validation set: form lines or English prose (the held-out book) in the
    held-out font families, or the writer-disjoint real lines (un-augmented)."""
    folder = plan.shards_dir / name
    if name == VALIDATION_SETS[2]:
        _, validation, _ = load_real_lines(plan.real_dir)
        return write_shard(folder, real_samples(validation, 1, seed=98, height=plan.height, width=plan.width))
    prose = name == VALIDATION_SETS[1]
    return write_shard(
        folder,
        synthetic_samples(
            _fonts(plan.fonts_dir, heldout=True),
            VALIDATION_SYNTHETIC_LINES,
            seed=97 if prose else 99,
            height=plan.height,
            width=plan.width,
            prose_share=1.0 if prose else 0.0,
            validation_prose=prose,
        ),
    )


def synthetic_shards(plan: DataPlan) -> range:
    """The indices of the synthetic shards ``plan`` asks for (shard i is rendered from seed 1000 + i)."""
    return range(plan.first_shard, plan.first_shard + -(-plan.synthetic_lines // plan.shard_lines))


def build_all(plan: DataPlan) -> None:
    """Make whatever shards are missing (safe to rerun: finished shards are kept)."""
    shares = style_shares(dict(plan.style_weights), TRAINING_FONTS)  # a bad weight stops here, not in a worker
    log.info("synthetic lines by style group: %s", ", ".join(f"{g} {s:.0%}" for g, s in shares.items()))
    mark_line_height(plan.shards_dir, plan.height)
    fetch_fonts(plan.fonts_dir, TRAINING_FONTS + list(HELDOUT_FONTS))
    done = {p.name for p in finished_shards(plan.shards_dir, "synth")} | {
        p.name for p in finished_shards(plan.shards_dir, "real")
    }
    with ProcessPoolExecutor(plan.workers) as pool:
        # Validation first: a training run started beside this one needs it before anything else.
        futures = [
            pool.submit(_validation_job, plan, name)
            for name in VALIDATION_SETS
            if not (plan.shards_dir / name).exists()
        ]
        futures += [
            pool.submit(_real_job, plan, part, plan.real_parts)
            for part in range(plan.real_parts)
            if f"real-{part:04d}" not in done
        ]
        futures += [
            pool.submit(_synthetic_job, plan, i) for i in synthetic_shards(plan) if f"synth-{i:04d}" not in done
        ]
        for future in progress(futures, unit=" shards", desc="data", logs=True):
            log.info("shard done: %d lines", future.result())
