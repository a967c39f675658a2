"""The generated evaluation set of forms: varied layouts, label fonts, handwriting fonts and sizes,
box and underline styles, rotation, scan noise and fax pages, with their truth.

Every form is made from its seed alone, so the set is the list of seeds (``EVAL_SEEDS``) and the
truth is what the generator drew: each text line's ink box and kind (printed label or handwritten
value) and each field (label line, value line). ``python -m benchmarks.form_lines --write DIR``
writes the pages and a ``truth.json`` for other tools.

Layouts, mixed on one page by section:

- ``inline``: a label and, to its right on the same row, a value written across a ruled line
  (solid, dashed or dotted) that its descenders cross;
- ``stacked``: a label with a box below it and the value written in the box (sometimes taller
  than the box, so it crosses the box's edges);
- ``grid``: two inline fields on one row, which must stay two fields.

Handwriting is 20-150 px tall (font size), in hands the text-type classifier never trained on
(7 of the 15 are unseen by the bundled OCR model too; the rest joined its training fonts in run 6).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tests.forms import FONT_CACHE, Form, FormLine
from training.fonts import LEGACY_HELDOUT_FAMILIES, TRAINING_FONTS, Font, fetch_fonts

PAGE_SIZE = (1654, 2339)  # A4 at 200 dpi
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
LABEL_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSansCondensed.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSansMono.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSerif-Regular.ttf",
    "LiberationSansNarrow-Regular.ttf",
    "LiberationMono-Regular.ttf",
    "LiberationSans-Bold.ttf",
)
# Hands from the design notes' list that the bundled model had not trained on when the set was made (the five fonts its
# runs were validated on and others of each style); the printed/handwritten classifier is fitted
# on the other families of training/fonts.py's training split instead (training_hands). This list
# is fixed here, so the figures in the README stay reproducible.
EVAL_HANDS = LEGACY_HELDOUT_FAMILIES + (
    "coming-soon",
    "delius",
    "itim",
    "pangolin",
    "sriracha",
    "edu-sa-beginner",
    "kite-one",
    "great-vibes",
    "pacifico",
    "mynerve",
)
EVAL_SEEDS = tuple(range(1000, 1060))
TRAINING_SEEDS_FROM = 5000  # forms the text-type classifier is fitted on (scripts/train_text_type.py) start here
FAX_SHARE = 0.2

LABELS = (
    "Surname",
    "First name",
    "Date of birth",
    "Address",
    "Postcode",
    "Town",
    "Telephone",
    "Email",
    "Occupation",
    "Employer",
    "Signature",
    "Date",
    "Reference",
    "Account no.",
    "Amount",
    "Nationality",
    "Place of birth",
    "Next of kin",
    "Doctor",
    "Vehicle reg.",
    "Policy number",
    "Country",
    "Mobile",
    "Department",
)
VALUES = (
    "John Smith",
    "Mary Jones",
    "Ahmed Khan",
    "Lucy Brown",
    "12 Main Street",
    "Leeds LS2 9JT",
    "07700 900123",
    "Teacher",
    "Nurse",
    "Engineer",
    "14/03/1987",
    "2 June 2024",
    "Anna Novak",
    "Tom Baker",
    "British",
    "Paris",
    "45 High Road",
    "York",
    "Bath",
    "PK 45120",
    "Sara Lopez",
    "Accounts",
    "Peter Walsh",
    "Derby",
    "Hull",
    "AB12 CDE",
    "yes",
    "Smith",
    "Dr Patel",
    "France",
    "310.50",
    "Green Lane",
)
TITLES = (
    "APPLICATION FORM",
    "Patient registration",
    "Change of address",
    "Claim form",
    "Membership application",
    "Parking permit request",
    "Staff details",
)


@dataclass
class FieldTruth:
    key: int  # index of the label line in Form.lines
    value: int  # index of the value line


@dataclass
class EvalForm(Form):
    fields: list[FieldTruth] = field(default_factory=list)
    fax: bool = False
    seed: int = 0


# Debian packages holding LABEL_FONTS (scripts/ensure-test-tools.sh installs them).
LABEL_FONT_PACKAGES = ("fonts-dejavu-core", "fonts-dejavu-extra", "fonts-liberation")


def label_fonts() -> list[Path]:
    """The printed fonts labels are set in (system DejaVu and Liberation faces), all of them.

    A missing face raises rather than being skipped: every form draws its label face from this
    list, so a shorter list is a different set of forms. (It was skipped once, and the set changed
    under the benchmark when another task's ``apt-get install chromium`` brought in
    fonts-liberation halfway through a session.)
    """
    found, missing = [], []
    for name in LABEL_FONTS:
        path = next((folder / name for folder in FONT_DIRS if (folder / name).exists()), None)
        if path is None:
            missing.append(name)
        else:
            found.append(path)
    if missing:
        raise FileNotFoundError(
            f"label fonts {', '.join(missing)} not found in {', '.join(map(str, FONT_DIRS))}: "
            f"install the Debian packages {' '.join(LABEL_FONT_PACKAGES)} (scripts/ensure-test-tools.sh does)"
        )
    return found


# The families training_hands() fetches: the training split less the evaluation hands.
TRAINING_HAND_FAMILIES = tuple(family for family in TRAINING_FONTS if family not in EVAL_HANDS)


def eval_hands() -> list[Font]:
    """The evaluation hands, all of them (a hand that cannot be fetched raises: see label_fonts)."""
    return fetch_fonts(FONT_CACHE, list(EVAL_HANDS), strict=True)


def training_hands() -> list[Font]:
    """The hands the text-type classifier is fitted on, all of them (strict, as eval_hands): every
    family of the training split (training/fonts.py) that is not an evaluation hand, 142 of them.

    It was fitted on the bundled model's 39 families before (LEGACY_TRAINING_FAMILIES, all among
    these): 98.7% right on their forms, 96.4% on the evaluation hands, most errors values in
    print-like hands. More hands of every style teach it what varies from hand to hand.
    """
    return fetch_fonts(FONT_CACHE, list(TRAINING_HAND_FAMILIES), strict=True)


class _Page:
    """A blank page that records each text it draws, with the text's exact ink box."""

    def __init__(self) -> None:
        self.image = Image.new("L", PAGE_SIZE, 255)
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[FormLine] = []

    def write(self, xy: tuple[int, int], text: str, font: ImageFont.FreeTypeFont, kind: str, fill: int = 20) -> int:
        left, top, right, bottom = self.draw.textbbox(xy, text, font=font)
        layer = Image.new("L", (right - left + 8, bottom - top + 8), 0)
        ImageDraw.Draw(layer).text((xy[0] - left + 4, xy[1] - top + 4), text, font=font, fill=255)
        ink = layer.getbbox()
        if ink is None:
            ink = (4, 4, layer.width - 4, layer.height - 4)
        box = (left - 4 + ink[0], top - 4 + ink[1], left - 4 + ink[2], top - 4 + ink[3])
        self.draw.text(xy, text, font=font, fill=fill)
        self.lines.append(FormLine(text, box, kind))
        return len(self.lines) - 1

    def rule(self, x0: int, x1: int, y: int, style: str, shade: int) -> None:
        if style == "solid":
            self.draw.line((x0, y, x1, y), fill=shade, width=2)
            return
        dash, gap = (10, 6) if style == "dashed" else (2, 5)
        for x in range(x0, x1, dash + gap):
            self.draw.line((x, y, min(x + dash, x1), y), fill=shade, width=2)


def _hand_font(rng: random.Random, hands: list[Font], size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(rng.choice(hands).path), size)


def _value_text(rng: random.Random, font: ImageFont.FreeTypeFont, hand: Font | None, room: int) -> str:
    """A value that fits ``room`` pixels (shortened, or a short one picked, when the hand is big)."""
    for _ in range(20):
        text = rng.choice(VALUES)
        if font.getlength(text) <= room:
            return text
    return rng.choice(("yes", "no", "12", "A1", "ok"))


def _hand_size(rng: random.Random) -> int:
    # Most values are 30-70 px, as people write in boxes; a quarter are very small or very large.
    roll = rng.random()
    if roll < 0.12:
        return rng.randint(20, 30)
    if roll < 0.75:
        return rng.randint(30, 70)
    return rng.randint(70, 150)


def make_eval_form(seed: int, hands: list[Font], printed: list[Path], fax: bool | None = None) -> EvalForm:
    """One form of the evaluation set (see the module's docstring)."""
    rng = random.Random(seed)
    page = _Page()
    label_path = rng.choice(printed)
    label_size = rng.randint(24, 38)
    label_font = ImageFont.truetype(str(label_path), label_size)
    title_font = ImageFont.truetype(str(label_path), int(label_size * rng.uniform(1.4, 1.8)))
    margin = rng.randint(90, 160)
    right_edge = PAGE_SIZE[0] - rng.randint(90, 160)
    rule_style = rng.choice(("solid", "solid", "dashed", "dotted"))
    shade = rng.randint(40, 170)
    pen = rng.randint(0, 70)  # ink of the writer's pen
    fields: list[FieldTruth] = []
    page.write((margin, rng.randint(70, 110)), rng.choice(TITLES), title_font, "printed")
    y = page.lines[-1].bbox[3] + rng.randint(70, 110)
    used_labels: set[str] = set()

    def new_label() -> str:
        choices = [label for label in LABELS if label not in used_labels] or list(LABELS)
        label = rng.choice(choices)
        used_labels.add(label)
        return label + rng.choice((":", ":", ""))

    def inline(x0: int, x1: int, top: int) -> int:
        """A label and its value to the right on a ruled line; returns the row's bottom."""
        size = _hand_size(rng)
        font = _hand_font(rng, hands, size)
        # the value's body sits on the rule, its descenders cross it; the row is as tall as its value
        ascent = font.getbbox("Hg")[3]
        base = top + max(label_font.getbbox("Hg")[3], int(ascent * 0.8))
        key = page.write((x0, base - label_font.getbbox("H")[3] - 4), new_label(), label_font, "printed")
        label_box = page.lines[key].bbox
        start = label_box[2] + rng.randint(int(label_size * 1.8), int(label_size * 1.8) + 70)  # a gap, as forms leave
        text = _value_text(rng, font, None, x1 - start - 10)
        value = page.write((start, base - int(ascent * 0.8)), text, font, "handwritten", pen)
        page.rule(label_box[2] + 20, x1, base + 2, rule_style, shade)
        fields.append(FieldTruth(key, value))
        return max(base + 4, page.lines[value].bbox[3])

    def stacked(x0: int, x1: int, top: int) -> int:
        """A label with a box below it holding the value; returns the box's bottom."""
        size = _hand_size(rng)
        font = _hand_font(rng, hands, size)
        key = page.write((x0, top), new_label(), label_font, "printed")
        box_top = page.lines[key].bbox[3] + rng.randint(10, 20)
        text = _value_text(rng, font, None, x1 - x0 - 60)
        text_h = font.getbbox(text)[3] - font.getbbox(text)[1]
        box_h = int(text_h * rng.uniform(0.85, 1.6)) + 10  # sometimes the writing overflows its box
        box_bottom = box_top + box_h
        page.draw.rectangle((x0, box_top, x1, box_bottom), outline=shade, width=2)
        glyph_top = font.getbbox(text)[1]
        value = page.write(
            (x0 + rng.randint(15, 40), box_top + (box_h - text_h) // 2 - glyph_top), text, font, "handwritten", pen
        )
        fields.append(FieldTruth(key, value))
        return max(box_bottom, page.lines[value].bbox[3])

    while True:
        layout = rng.choice(("inline", "inline", "stacked", "grid"))
        gap = rng.randint(50, 90)
        if layout == "grid":
            middle = (margin + right_edge) // 2
            bottom = max(
                inline(margin, middle - rng.randint(60, 120), y), inline(middle + rng.randint(0, 40), right_edge, y)
            )
        elif layout == "stacked":
            bottom = stacked(margin, rng.randint(int(right_edge * 0.6), right_edge), y)
        else:
            bottom = inline(margin, right_edge, y)
        if bottom > PAGE_SIZE[1] - 260:
            _drop_after(page, fields, y)
            break
        y = bottom + gap
    angle = rng.uniform(-3.0, 3.0)
    fax = rng.random() < FAX_SHARE if fax is None else fax
    image = _scan(page.image, rng, angle, fax)
    return EvalForm(image=image, lines=page.lines, rotation=angle, fields=fields, fax=fax, seed=seed)


def _drop_after(page: _Page, fields: list[FieldTruth], top: int) -> None:
    """Undo the last row (it ran off the page): blank it and forget its lines and fields."""
    page.draw.rectangle((0, top - 5, PAGE_SIZE[0], PAGE_SIZE[1]), fill=255)
    keep = [i for i, line in enumerate(page.lines) if line.bbox[1] < top - 5]
    page.lines[:] = [page.lines[i] for i in keep]
    fields[:] = [f for f in fields if f.key < len(page.lines) and f.value < len(page.lines)]


def _scan(page: Image.Image, rng: random.Random, angle: float, fax: bool) -> Image.Image:
    page = page.rotate(angle, Image.Resampling.BILINEAR, fillcolor=255)
    noise = np.random.default_rng(rng.getrandbits(32))
    pixels = np.asarray(page, dtype=np.float32) * rng.uniform(0.88, 0.98) + rng.uniform(0, 14)
    pixels += noise.normal(0, rng.uniform(3, 10), pixels.shape)
    specks = noise.random(pixels.shape) < rng.uniform(0, 4e-4)  # dust
    pixels[specks] = rng.uniform(0, 120)
    page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9))
    )
    if fax:
        page = page.convert("1")  # Floyd-Steinberg dither, as fax machines send
    return page.convert("RGB")


def eval_set(count: int | None = None) -> list[EvalForm]:
    """The evaluation forms (the first ``count`` seeds, or all of them)."""
    hands, printed = eval_hands(), label_fonts()
    return [make_eval_form(seed, hands, printed) for seed in EVAL_SEEDS[:count]]
