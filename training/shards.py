"""Pre-rendered training data: line images already fitted to the model's input box, on disk.

Rendering and augmenting is done once, by ``build_*`` below (in parallel processes), so the
training loop only copies bytes. A shard is a folder holding ``pixels.npy`` (all images, flat,
uint8), ``offsets.npy`` (start of each image), ``shapes.npy`` (height, width of each) and
``texts.json``; it is written under a temporary name and renamed when complete, so a crash never
leaves a half shard that training would read.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.charset import in_alphabet, normalise_text
from training.fonts import STYLE_GROUPS, Font, check_style_weight, style_of
from training.prose import ProseLines
from training.real_lines import RealLine
from training.render import Augmentation, augment_real_line, fit_text_to_font, render_line
from training.texts import FormTextGenerator
from worker.line_image import fit_line


@dataclass
class Shard:
    """A loaded shard; images are views into one memory-mapped array."""

    pixels: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def image(self, index: int) -> np.ndarray:
        height, width = self.shapes[index]
        start = self.offsets[index]
        return self.pixels[start : start + height * width].reshape(height, width)


def load_shard(folder: Path) -> Shard:
    """Open a finished shard (memory-mapped: cheap to open, paged in as it is read)."""
    return Shard(
        pixels=np.load(folder / "pixels.npy", mmap_mode="r"),
        offsets=np.load(folder / "offsets.npy"),
        shapes=np.load(folder / "shapes.npy"),
        texts=json.loads((folder / "texts.json").read_text(encoding="utf-8")),
    )


LINE_HEIGHT_FILE = "line_height"  # in a shards folder: the input height its lines were fitted to


LEGACY_LINE_HEIGHT = 40  # shards made before the height was recorded were all made at 40 px


def mark_line_height(shards: Path, height: int) -> None:
    """Record the height the lines of ``shards`` are fitted to; refuse a folder made for another."""
    marker = shards / LINE_HEIGHT_FILE
    recorded = line_height(shards)
    if recorded is not None and recorded != height:
        raise ValueError(f"{shards} holds lines fitted to {recorded} px, not {height}: use a root of its own")
    shards.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{height}\n")


def line_height(shards: Path) -> int | None:
    """The height recorded by ``mark_line_height``; for a folder of shards made before it was
    recorded, the height they were all made at then; None for a folder with no shard yet."""
    marker = shards / LINE_HEIGHT_FILE
    if marker.exists():
        return int(marker.read_text())
    return LEGACY_LINE_HEIGHT if shards.is_dir() and any(p.is_dir() for p in shards.iterdir()) else None


def finished_shards(root: Path, prefix: str) -> list[Path]:
    """Complete shards named ``prefix-*`` under ``root`` (temporary ``.partial`` folders excluded)."""
    return sorted(p for p in root.glob(f"{prefix}-*") if p.is_dir() and not p.name.endswith(".partial"))


def write_shard(folder: Path, samples: Iterable[tuple[np.ndarray, str]]) -> int:
    """Write ``(image, text)`` pairs as a shard at ``folder``, atomically; return the count."""
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    images: list[np.ndarray] = []
    texts: list[str] = []
    for image, text in samples:
        images.append(np.ascontiguousarray(image, dtype=np.uint8))
        texts.append(text)
    shapes = np.array([im.shape for im in images], dtype=np.int32).reshape(-1, 2)
    sizes = shapes[:, 0].astype(np.int64) * shapes[:, 1]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    np.save(staging / "pixels.npy", np.concatenate([im.ravel() for im in images]) if images else np.zeros(0, np.uint8))
    np.save(staging / "offsets.npy", offsets)
    np.save(staging / "shapes.npy", shapes)
    (staging / "texts.json").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    staging.rename(folder)
    return len(texts)


def _fitted(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    fitted, _ = fit_line(Image.fromarray(pixels), height, width, grayscale=True)
    return np.asarray(fitted)


class LineTexts:
    """Line texts for synthetic lines: form fields and, ``prose_share`` of the time, English prose."""

    def __init__(self, seed: int, prose_share: float, validation_prose: bool = False) -> None:
        self.rng = random.Random(seed * 7 + 1)
        self.forms = FormTextGenerator(seed)
        self.prose = ProseLines(seed, validation=validation_prose) if prose_share > 0 else None
        self.prose_share = prose_share

    def line(self) -> str:
        use_prose = self.prose is not None and self.rng.random() < self.prose_share
        raw = self.prose.line() if use_prose else self.forms.line()  # type: ignore[union-attr]
        return "".join(c for c in normalise_text(raw) if in_alphabet(c))


def synthetic_samples(
    fonts: list[Font],
    count: int,
    seed: int,
    height: int,
    width: int,
    max_strength: float = 1.0,
    prose_share: float = 0.0,
    validation_prose: bool = False,
    style_weights: Mapping[str, float] | None = None,
) -> Iterator[tuple[np.ndarray, str]]:
    """``count`` rendered lines in random font families, augmentation strength uniform in [0, max].

    Texts are form fields, with ``prose_share`` English prose (from the held-out book when
    ``validation_prose``). Families are drawn uniformly, or, with ``style_weights`` (style group
    -> weight, 1 where absent), each family in proportion to its group's weight.
    """
    rng = random.Random(seed)
    texts = LineTexts(seed, prose_share, validation_prose)
    families = sorted({f.family for f in fonts})
    by_family = {family: [f for f in fonts if f.family == family] for family in families}
    pick_family = _family_picker(rng, families, style_weights)
    produced = 0
    while produced < count:
        font = rng.choice(by_family[pick_family()])
        text = fit_text_to_font(texts.line(), font)
        if not text:
            continue
        pixels = render_line(text, font, rng, height, Augmentation(rng.uniform(0, max_strength)))
        produced += 1
        yield _fitted(pixels, height, width), text


def _family_weights(style_weights: Mapping[str, float] | None, families: list[str]) -> list[float]:
    """Each family's weight, its style group's (1 where absent), after checking every weight."""
    style_weights = style_weights or {}
    for group, weight in style_weights.items():
        check_style_weight(group, weight)
    weights = [style_weights.get(style_of(family), 1.0) for family in families]
    if not any(weights):
        raise ValueError("style weights leave no family to draw")
    return weights


def style_shares(style_weights: Mapping[str, float] | None, families: list[str]) -> dict[str, float]:
    """The share of draws each style group gets among ``families`` with ``style_weights`` (style
    group -> weight, 1 where absent); raises ValueError on an unknown group or a weight that is
    negative, not finite, or leaves no family to draw."""
    weights = _family_weights(style_weights, families)
    total = sum(weights)
    by_group = dict.fromkeys(STYLE_GROUPS, 0.0)
    for family, weight in zip(families, weights, strict=True):
        by_group[style_of(family)] += weight / total
    return by_group


def _family_picker(
    rng: random.Random, families: list[str], style_weights: Mapping[str, float] | None
) -> Callable[[], str]:
    """A draw of one family. Where every family weighs 1 it is ``rng.choice``, so that the seeds of
    shards (and validation sets) rendered before weights existed still draw the same families."""
    weights = _family_weights(style_weights, families)
    if all(weight == 1.0 for weight in weights):
        return lambda: rng.choice(families)
    return lambda: rng.choices(families, weights)[0]


def real_samples(
    lines: list[RealLine], variants: int, seed: int, height: int, width: int, strength: float = 1.0
) -> Iterator[tuple[np.ndarray, str]]:
    """Each real line once as it is (variant 0) and ``variants - 1`` times augmented."""
    rng = random.Random(seed)
    for line in lines:
        with Image.open(line.path) as opened:
            image = opened.convert("L")
        for variant in range(variants):
            if variant == 0:
                pixels = np.asarray(
                    image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)
                )
            else:
                pixels = augment_real_line(image, rng, height, Augmentation(rng.uniform(0.3, strength)))
            yield _fitted(pixels, height, width), line.text
