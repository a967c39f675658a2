"""The material a model is judged on: nothing of it is ever trained on.

- form-field lines in each held-out font family (40 families across five style groups);
- English prose from the held-out book, in the held-out families;
- the writer-disjoint real lines of each collection (as scanned).

Synthetic lines are rendered at 64 px, so the recognizer scales them as it scales real crops.
Evaluation and calibration draw from the same fonts with different seeds (and so other texts
and distortions): the calibration is fitted on lines the evaluation never sees.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from training.fonts import HELDOUT_FONTS, TRAINING_FONTS, fetch_fonts, style_of
from training.real_lines import DEFAULT_REAL_DIR, load_real_lines
from training.render import Augmentation, fit_text_to_font, render_line
from training.shards import LineTexts

EVALUATION_SEED = 4242
CALIBRATION_SEED = 777


@dataclass
class LineSet:
    """Named line images with their truth, and the groups they are reported in."""

    name: str
    groups: tuple[str, ...]
    images: list[Image.Image]
    texts: list[str]
    in_overall: bool = True  # counted in the "all" group (a fit check on trained fonts is not)


def heldout_font_sets(
    fonts_dir: Path, forms_per_font: int, prose_per_font: int, seed: int = EVALUATION_SEED
) -> list[LineSet]:
    """Per held-out family: form lines (``font:NAME``) and English prose lines (``prose:NAME``)."""
    sets = []
    for family in HELDOUT_FONTS:
        sets += _font_sets(fonts_dir, family, forms_per_font, prose_per_font, seed, heldout=True)
    return sets


def trained_font_sets(
    fonts_dir: Path, families: int, forms_per_font: int, seed: int = EVALUATION_SEED
) -> list[LineSet]:
    """Form lines in ``families`` trained families (``trained:NAME``), taken across the style groups
    in proportion to their sizes (see ``fit_check_families``).

    Not validation: the model learned these hands (on other texts and distortions). Read beside
    the held-out sets they show how much of the error is the gap to unseen hands and how much is
    what the model still gets wrong in hands it knows (too little capacity or training).
    """
    sets = []
    for family in fit_check_families(families):
        sets += _font_sets(fonts_dir, family, forms_per_font, 0, seed, heldout=False)
    return sets


def fit_check_families(count: int) -> list[str]:
    """``count`` trained families taken at even steps through them ordered by style group: each
    group in proportion to its size (with fewer than about 20, the small groups may be missed)."""
    by_style = sorted(TRAINING_FONTS, key=lambda f: (style_of(f), f))
    return by_style[:: max(1, len(by_style) // max(1, count))][:count]


def _font_sets(
    fonts_dir: Path, family: str, forms_per_font: int, prose_per_font: int, seed: int, heldout: bool
) -> list[LineSet]:
    """One family's form lines and English prose lines, with the validation's seeds and distortions."""
    fonts = fetch_fonts(fonts_dir, [family])
    if not fonts:
        return []
    style = style_of(family)
    sets = []
    for kind, count, prose_share in (("font", forms_per_font, 0.0), ("prose", prose_per_font, 1.0)):
        if count <= 0:
            continue
        rng = random.Random(f"{seed}-{kind}-{family}")
        texts = LineTexts(seed + len(family), prose_share, validation_prose=True)
        images, truths = [], []
        while len(images) < count:
            font = rng.choice(fonts)
            text = fit_text_to_font(texts.line(), font)
            if text:
                images.append(Image.fromarray(render_line(text, font, rng, 64, Augmentation(rng.uniform(0, 1)))))
                truths.append(text)
        if heldout:
            group = "held-out fonts: forms" if kind == "font" else "held-out fonts: English prose"
            sets.append(LineSet(f"{kind}:{family}", (group, f"style: {style}"), images, truths))
        else:
            sets.append(
                LineSet(f"trained:{family}", ("trained fonts: forms (fit check)",), images, truths, in_overall=False)
            )
    return sets


def real_sets(real_dir: Path = DEFAULT_REAL_DIR, limit: int = 0) -> list[LineSet]:
    """The writer-disjoint validation lines, one set per collection (``limit`` lines each, 0: all)."""
    _, validation, _ = load_real_lines(real_dir)
    by_collection: dict[str, LineSet] = {}
    for line in validation:
        bucket = by_collection.setdefault(
            line.dataset, LineSet(f"real:{line.dataset}", ("real: unseen writers",), [], [])
        )
        if not limit or len(bucket.images) < limit:
            with Image.open(line.path) as opened:
                bucket.images.append(opened.convert("L"))
            bucket.texts.append(line.text)
    return list(by_collection.values())
