"""Synthetic scanned forms with known text, layout and reading order, for whole-page tests.

A form has a printed title and reference, printed field labels with handwritten values on ruled
lines, and a two-column section (applicant | co-applicant) that must be read column by column.
Handwriting is rendered in the fonts held out from the bundled model's training, so reading it
is a test on unseen hands. The page is then made to look scanned: slight rotation, paper tone,
noise and blur.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from training.fonts import LEGACY_HELDOUT_FAMILIES, Font, fetch_fonts

FONT_CACHE = Path(__file__).resolve().parents[1] / "var" / "cache" / "fonts"
PAGE_SIZE = (1240, 1754)  # A4 at 150 dpi

NAMES = ("John Smith", "Mary Jones", "Ahmed Khan", "Lucy Brown", "Peter Walsh", "Anna Novak", "Tom Baker", "Sara Lopez")
STREETS = ("12 Main Street", "7 Oak Avenue", "45 High Road", "3 Mill Lane", "88 Park Drive", "19 Church Way")
CITIES = ("London N1 7AA", "Leeds LS2 9JT", "York YO1 7HH", "Bath BA1 1LZ", "Derby DE1 2FS", "Hull HU1 3DZ")
JOBS = ("Teacher", "Nurse", "Engineer", "Baker", "Driver", "Clerk")


@dataclass
class FormLine:
    text: str
    bbox: tuple[int, int, int, int]  # before the page rotation
    kind: str  # "printed" or "handwritten"


@dataclass
class Form:
    image: Image.Image
    lines: list[FormLine] = field(default_factory=list)  # in reading order
    rotation: float = 0.0  # degrees, counter-clockwise, about the page centre

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def page_quad(self, line: FormLine) -> np.ndarray:
        """The line's four corners on the scanned (rotated) page."""
        x0, y0, x1, y1 = line.bbox
        cx, cy = self.image.width / 2, self.image.height / 2
        angle = np.deg2rad(self.rotation)
        corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64) - (cx, cy)
        # PIL rotates counter-clockwise on screen, i.e. clockwise in y-down maths
        return corners @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) + (cx, cy)

    def page_bbox(self, line: FormLine) -> tuple[float, float, float, float]:
        """The line's box on the scanned (rotated) page."""
        rotated = self.page_quad(line)
        return (*rotated.min(axis=0), *rotated.max(axis=0))


def handwriting_fonts() -> list[Font]:
    return fetch_fonts(FONT_CACHE, list(LEGACY_HELDOUT_FAMILIES))


def _printed(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _write(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font, kind: str, fill: int = 20) -> FormLine:
    draw.text(xy, text, font=font, fill=fill)
    left, top, right, bottom = draw.textbbox(xy, text, font=font)
    return FormLine(text, (left, top, right, bottom), kind)


def make_form(seed: int, fonts: list[Font], rotation: float | None = None) -> Form:
    """One scanned form page; ``rotation`` in degrees (default: random within +-1.2)."""
    rng = random.Random(seed)
    page = Image.new("L", PAGE_SIZE, 255)
    draw = ImageDraw.Draw(page)
    hand = ImageFont.truetype(str(rng.choice(fonts).path), rng.randint(40, 46))
    label_font, title_font = _printed(30), _printed(44)
    lines: list[FormLine] = []
    lines.append(_write(draw, (100, 90), "APPLICATION FOR A PARKING PERMIT", title_font, "printed"))
    lines.append(_write(draw, (100, 170), f"Reference: PK-{rng.randint(10000, 99999)}", label_font, "printed"))
    name, street, city = rng.choice(NAMES), rng.choice(STREETS), rng.choice(CITIES)
    date = f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(1950, 2005)}"
    phone = f"0{rng.randint(1000, 9999)} {rng.randint(100000, 999999)}"
    fields = [("Full name:", name), ("Address:", street), ("Town:", city), ("Date of birth:", date), ("Phone:", phone)]
    y = 270
    for label, value in fields:
        written = _write(draw, (100, y), label, label_font, "printed")
        x = written.bbox[2] + rng.randint(70, 110)
        draw.line((x - 10, y + 52, 1140, y + 52), fill=150, width=2)  # the ruled line to write on
        lines += [written, _write(draw, (x, y - 8), value, hand, "handwritten")]
        y += 100
    # Two columns: read the whole left column, then the right one.
    y += 60
    columns = []
    for x0, heading in ((100, "Applicant"), (760, "Co-applicant")):
        column = [_write(draw, (x0, y), heading, label_font, "printed")]
        for row, (label, value) in enumerate((("Job:", rng.choice(JOBS)), ("Signed:", rng.choice(NAMES).split()[1]))):
            row_y = y + 80 + row * 100
            written = _write(draw, (x0, row_y), label, label_font, "printed")
            column += [
                written,
                _write(draw, (written.bbox[2] + rng.randint(90, 120), row_y - 8), value, hand, "handwritten"),
            ]
        columns.append(column)
    lines += columns[0] + columns[1]
    draw.line((100, y + 330, 1140, y + 330), fill=120, width=2)
    lines.append(_write(draw, (100, y + 370), "Office use only", label_font, "printed"))
    angle = rng.uniform(-1.2, 1.2) if rotation is None else rotation
    return Form(_scan(page, rng, angle), lines, angle)


def _scan(page: Image.Image, rng: random.Random, angle: float) -> Image.Image:
    page = page.rotate(angle, Image.Resampling.BILINEAR, fillcolor=255)
    pixels = np.asarray(page, dtype=np.float32) * rng.uniform(0.9, 0.98) + rng.uniform(0, 12)
    pixels += np.random.default_rng(rng.getrandbits(32)).normal(0, 6, pixels.shape)
    page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    return page.convert("RGB")
