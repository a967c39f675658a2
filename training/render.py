"""Render a text line in a handwriting font and make it look scanned.

Rendering happens at about three times the model's input height, where strokes, slant and
wobble are shaped, then the line is reduced to the model height so that anti-aliasing and
blur look like a scanner's. Every random choice comes from the ``random.Random`` passed in,
so a shard is reproducible from its seed.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from training.fonts import Font


@dataclass(frozen=True)
class Augmentation:
    """How hard to distort; ``strength`` 0 renders clean lines, 1 the full scanned look."""

    strength: float = 1.0


_FONT_CACHE: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    key = (path, size)
    if key not in _FONT_CACHE:
        _FONT_CACHE[key] = ImageFont.truetype(path, size)
    return _FONT_CACHE[key]


def fit_text_to_font(text: str, font: Font) -> str:
    """Upper-case for small-caps fonts and drop characters the font has no glyph for."""
    if font.caps_only:
        text = text.upper()
    charset = font.charset
    return " ".join("".join(c for c in text if c in charset or c == " ").split())


def render_line(text: str, font: Font, rng: random.Random, height: int, aug: Augmentation) -> np.ndarray:
    """Return an 8-bit greyscale line image ``height`` pixels high showing ``text`` in ``font``."""
    s = aug.strength
    size = rng.randint(44, 64)
    ink = _draw_ink(text, font, size, rng, s)
    ink = _slant_and_rotate(ink, rng, s)
    ink = _wobble(ink, rng, s, size)
    ink = _crop(ink, rng, s, size)
    ink = _add_rules(ink, rng, s)
    page = _compose(ink, rng, s)
    return scan_effects(page, rng, s, height)


def augment_real_line(image: Image.Image, rng: random.Random, height: int, aug: Augmentation) -> np.ndarray:
    """Vary a real handwritten line (slant, rotation, width, tone, blur, noise, JPEG) at ``height`` px."""
    s = aug.strength
    coverage = Image.fromarray(255 - np.asarray(image.convert("L")))
    coverage = _slant_and_rotate(coverage, rng, 0.5 * s)
    page = np.asarray(coverage, dtype=np.float32)
    contrast = rng.uniform(1 - 0.4 * s, 1.0)
    paper = rng.uniform(255 - 50 * s, 255)
    page = Image.fromarray(np.clip(paper - page * contrast, 0, 255).astype(np.uint8))
    return scan_effects(page, rng, s, height)


def scan_effects(page: Image.Image, rng: random.Random, s: float, height: int) -> np.ndarray:
    """Reduce a greyscale page strip to ``height`` px with width jitter, blur, noise and JPEG."""
    scale = height / page.height
    new_width = max(4, round(page.width * scale * rng.uniform(1 - 0.15 * s, 1 + 0.15 * s)))
    page = page.resize((new_width, height), Image.Resampling.LANCZOS if rng.random() < 0.5 else Image.Resampling.BILINEAR)
    if rng.random() < 0.5 * s:
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.9)))
    pixels = np.asarray(page, dtype=np.float32)
    if rng.random() < 0.6 * s:
        pixels = pixels + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 14), pixels.shape)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    if rng.random() < 0.35 * s:
        pixels = _jpeg(pixels, rng.randint(20, 85))
    return pixels


def _draw_ink(text: str, font: Font, size: int, rng: random.Random, s: float) -> Image.Image:
    """Ink coverage (0 = paper, 255 = ink) with some word-spacing and baseline variation."""
    face = _font(str(font.path), size)
    stroke = rng.choices([0, 1, 2], [6, 3 * s, 1 * s])[0]
    words = text.split(" ")
    space = face.getlength(" ")
    widths = [face.getlength(w) for w in words]
    margin = size
    ascent, descent = face.getmetrics()
    gaps = [space * rng.uniform(1 - 0.4 * s, 1 + 0.8 * s) for _ in words]
    canvas = Image.new("L", (int(sum(widths) + sum(gaps) + 2 * margin), ascent + descent + 2 * margin), 0)
    draw = ImageDraw.Draw(canvas)
    x = float(margin)
    for word, width, gap in zip(words, widths, gaps):
        y = margin + rng.gauss(0, 1.5 * s)
        draw.text((x, y), word, font=face, fill=255, stroke_width=stroke, stroke_fill=255)
        x += width + gap
    if stroke == 0 and rng.random() < 0.3 * s:
        canvas = canvas.filter(ImageFilter.MaxFilter(3))  # a slightly broader pen

    return canvas


def _slant_and_rotate(ink: Image.Image, rng: random.Random, s: float) -> Image.Image:
    shear = rng.uniform(-0.35, 0.35) * s
    if abs(shear) > 0.02:
        w, h = ink.size
        extra = int(abs(shear) * h)
        ink = ink.transform(
            (w + extra, h), Image.Transform.AFFINE,
            (1, shear, -extra if shear > 0 else 0, 0, 1, 0), Image.Resampling.BILINEAR,
        )
    angle = rng.gauss(0, 1.2 * s)
    if abs(angle) > 0.1:
        ink = ink.rotate(angle, Image.Resampling.BILINEAR, expand=True)
    return ink


def _wobble(ink: Image.Image, rng: random.Random, s: float, size: int) -> Image.Image:
    """Baseline that drifts up and down along the line, as handwriting on unruled paper does."""
    amplitude = rng.uniform(0, 0.08) * size * s
    if amplitude < 1:
        return ink
    pixels = np.asarray(ink)
    w = pixels.shape[1]
    period = rng.uniform(1.5, 6) * size
    phase = rng.uniform(0, 6.28)
    shifts = np.round(amplitude * np.sin(np.arange(w) / period * 6.28 + phase)).astype(int)
    out = np.zeros_like(pixels)
    for shift in np.unique(shifts):
        cols = shifts == shift
        out[:, cols] = np.roll(pixels[:, cols], shift, axis=0)
    return Image.fromarray(out)


def _crop(ink: Image.Image, rng: random.Random, s: float, size: int) -> Image.Image:
    """Crop around the ink with tight or loose, uneven margins, like a line detector's boxes."""
    box = ink.getbbox() or (0, 0, ink.width, ink.height)
    left, top, right, bottom = box
    loose = rng.random() < 0.5
    def margin() -> int:
        return int(rng.uniform(0, 0.45 if loose else 0.1) * size * (0.3 + s))
    left, right = left - margin(), right + margin()
    top, bottom = top - margin(), bottom + margin()
    if rng.random() < 0.1 * s:  # a box that clips the tips of ascenders or descenders
        clip = int(rng.uniform(0.02, 0.08) * (bottom - top))
        top, bottom = (top + clip, bottom) if rng.random() < 0.5 else (top, bottom - clip)
    return ink.crop((left, top, right, bottom))


def _add_rules(ink: Image.Image, rng: random.Random, s: float) -> Image.Image:
    """Form furniture: a ruled line or underline, sometimes dotted; field box edges."""
    roll = rng.random()
    if roll > 0.45 * s:
        return ink
    rule = Image.new("L", ink.size, 0)
    draw = ImageDraw.Draw(rule)
    w, h = ink.size
    strength = rng.randint(60, 200)
    width = rng.randint(1, 3)
    y = int(h * rng.uniform(0.72, 0.95))
    if rng.random() < 0.3:
        for x in range(0, w, 8):
            draw.line((x, y, x + 3, y), fill=strength, width=width)
    else:
        draw.line((0, y, w, y), fill=strength, width=width)
    if rng.random() < 0.15:
        y2 = int(h * rng.uniform(0.0, 0.12))
        draw.line((0, y2, w, y2), fill=strength, width=width)
    if rng.random() < 0.1:
        x = rng.randint(0, max(1, w // 30))
        draw.line((x, 0, x, h), fill=strength, width=width)
    return Image.fromarray(np.maximum(np.asarray(ink), np.asarray(rule)))


def _compose(ink: Image.Image, rng: random.Random, s: float) -> Image.Image:
    """Ink coverage -> grey page: paper tone and texture, ink tone."""
    coverage = np.asarray(ink, dtype=np.float32) / 255.0
    paper = rng.uniform(255 - 60 * s, 255)
    ink_tone = rng.uniform(0, min(30 + 60 * s, paper - 100))  # always legible contrast
    h, w = coverage.shape
    background = np.full((h, w), paper, dtype=np.float32)
    if rng.random() < 0.5 * s:
        noise_rng = np.random.default_rng(rng.getrandbits(32))
        coarse = noise_rng.normal(0, rng.uniform(3, 15), (max(2, h // 16), max(2, w // 16))).astype(np.float32)
        background += np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BILINEAR))
    pixels = background * (1 - coverage) + ink_tone * coverage
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("L"))
