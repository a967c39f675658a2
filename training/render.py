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
    ink = _elastic(ink, rng, s, size)
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
    """Scan a greyscale strip and reduce it to ``height`` px: width jitter, blur, noise, 1-bit, JPEG.

    The scanner's effects are applied at a resolution between the rendering and the model's
    (a line of a 200-300 dpi scan is 1-2.5 times the model's height), where dithering and fax
    thresholding really happen, then the strip is reduced as the recognizer reduces a crop.
    """
    scan_height = max(height, round(height * rng.uniform(1.0, 2.5)))
    scale = scan_height / page.height
    new_width = max(4, round(page.width * scale * rng.uniform(1 - 0.15 * s, 1 + 0.15 * s)))
    page = page.resize(
        (new_width, scan_height), Image.Resampling.LANCZOS if rng.random() < 0.5 else Image.Resampling.BILINEAR
    )
    if rng.random() < 0.5 * s:
        page = page.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.9) * scan_height / height))
    pixels = np.asarray(page, dtype=np.float32)
    if rng.random() < 0.6 * s:
        pixels = pixels + np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 14), pixels.shape)
    pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    roll = rng.random()
    if roll < 0.08 * s:
        pixels = _fax(pixels, rng)
    elif roll < 0.14 * s:
        pixels = np.asarray(Image.fromarray(pixels).convert("1").convert("L"))  # Floyd-Steinberg dithering
    elif rng.random() < 0.35 * s:
        pixels = _jpeg(pixels, rng.randint(20, 85))
    reduced = Image.fromarray(pixels).resize(
        (max(4, round(pixels.shape[1] * height / scan_height)), height), Image.Resampling.BOX
    )
    return np.asarray(reduced)


def _fax(pixels: np.ndarray, rng: random.Random) -> np.ndarray:
    """A fax page: fixed threshold, half the vertical resolution (standard mode), speckle."""
    threshold = rng.uniform(0.45, 0.7) * (int(pixels.max()) + int(pixels.min()))
    binary = np.where(pixels < threshold, 0, 255).astype(np.uint8)
    h, w = binary.shape
    coarse = binary[::2]
    binary = np.repeat(coarse, 2, axis=0)[:h]
    noise = np.random.default_rng(rng.getrandbits(32)).random(binary.shape)
    speckle = rng.uniform(0.0005, 0.004)
    binary[noise < speckle] = 0
    binary[noise > 1 - speckle / 2] = 255
    return binary


def _draw_ink(text: str, font: Font, size: int, rng: random.Random, s: float) -> Image.Image:
    """Ink coverage (0 = paper, 255 = ink) with word spacing, letter spacing and baseline variation."""
    face = _font(str(font.path), size)
    stroke = rng.choices([0, 1, 2], [6, 3 * s, 1 * s])[0]
    # Letter spacing: most lines as the font sets them, some spread out or squeezed (drawn a
    # letter at a time, which breaks the joins of connected scripts as spaced-out writing does).
    tracking = rng.uniform(-0.04, 0.25) * size * s if rng.random() < 0.25 * s else 0.0
    words = text.split(" ")
    space = face.getlength(" ")
    widths = [_word_length(face, w, tracking) for w in words]
    margin = size
    ascent, descent = face.getmetrics()
    gaps = [space * rng.uniform(1 - 0.4 * s, 1 + 0.8 * s) for _ in words]
    canvas = Image.new("L", (int(sum(widths) + sum(gaps) + 2 * margin), ascent + descent + 2 * margin), 0)
    draw = ImageDraw.Draw(canvas)
    x = float(margin)
    for word, width, gap in zip(words, widths, gaps, strict=True):
        y = margin + rng.gauss(0, 1.5 * s)
        if tracking:
            cursor = x
            for char in word:
                draw.text((cursor, y), char, font=face, fill=255, stroke_width=stroke, stroke_fill=255)
                cursor += face.getlength(char) + tracking
        else:
            draw.text((x, y), word, font=face, fill=255, stroke_width=stroke, stroke_fill=255)
        x += width + gap
    return _pen_width(canvas, rng, s, stroke)


def _word_length(face: ImageFont.FreeTypeFont, word: str, tracking: float) -> float:
    if not tracking:
        return face.getlength(word)
    return sum(face.getlength(c) for c in word) + tracking * max(0, len(word) - 1)


# A finer pen than the font's keeps at least this share of its ink. Below it the font already
# draws hairlines: one erosion breaks its letters into fragments or wipes the line out (about a
# third of the families: league-script keeps 0%, vujahday-script 14%; measured on one line at
# 52 px), which is no pen at all but an unreadable image with a text to learn.
MIN_FINE_PEN_INK = 0.2


def _pen_width(ink: Image.Image, rng: random.Random, s: float, stroke: int) -> Image.Image:
    """A thinner or broader pen than the font's: erode or dilate the strokes."""
    roll = rng.random()
    if roll < 0.2 * s and stroke == 0:
        finer = ink.filter(ImageFilter.MinFilter(3))  # a fine pen, where the strokes survive one erosion
        if _ink_amount(finer) >= MIN_FINE_PEN_INK * _ink_amount(ink):
            return finer
        return ink
    if roll < 0.45 * s and stroke == 0:
        return ink.filter(ImageFilter.MaxFilter(rng.choice([3, 3, 5])))  # a felt tip
    return ink


def _ink_amount(ink: Image.Image) -> int:
    return int(np.asarray(ink, dtype=np.int64).sum())


def _slant_and_rotate(ink: Image.Image, rng: random.Random, s: float) -> Image.Image:
    shear = rng.uniform(-0.35, 0.35) * s
    if abs(shear) > 0.02:
        w, h = ink.size
        extra = int(abs(shear) * h)
        ink = ink.transform(
            (w + extra, h),
            Image.Transform.AFFINE,
            (1, shear, -extra if shear > 0 else 0, 0, 1, 0),
            Image.Resampling.BILINEAR,
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


def _elastic(ink: Image.Image, rng: random.Random, s: float, size: int) -> Image.Image:
    """A smooth random displacement of the strokes: no hand draws the same letter twice alike."""
    if rng.random() > 0.5 * s:
        return ink
    import cv2

    pixels = np.asarray(ink)
    h, w = pixels.shape
    noise_rng = np.random.default_rng(rng.getrandbits(32))
    cell = max(4, int(size * rng.uniform(0.3, 0.8)))  # displacement varies over about a letter
    amplitude = rng.uniform(0.02, 0.07) * size * s
    coarse = noise_rng.normal(0, amplitude, (2, max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    dx = cv2.resize(coarse[0], (w, h), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(coarse[1], (w, h), interpolation=cv2.INTER_CUBIC)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(
        pixels, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )
    return Image.fromarray(warped)


def _crop(ink: Image.Image, rng: random.Random, s: float, size: int) -> Image.Image:
    """Crop around the ink with tight or loose, uneven margins, like a line detector's boxes."""
    box = ink.getbbox() or (0, 0, ink.width, ink.height)
    left, top, right, bottom = box
    loose = rng.random() < 0.5

    def margin() -> int:
        return int(rng.uniform(0, 0.45 if loose else 0.1) * size * (0.3 + s))

    left, right = left - margin(), right + margin()
    top, bottom = top - margin(), bottom + margin()
    if rng.random() < 0.15 * s:  # a tall field box around small writing: text fills half the crop
        extra = int(rng.uniform(0.2, 0.7) * size)
        top, bottom = (top - extra, bottom) if rng.random() < 0.5 else (top, bottom + extra)
    if rng.random() < 0.1 * s:  # a box that clips the tips of ascenders or descenders
        clip = int(rng.uniform(0.02, 0.08) * (bottom - top))
        top, bottom = (top + clip, bottom) if rng.random() < 0.5 else (top, bottom - clip)
    return ink.crop((left, top, right, bottom))


def _add_rules(ink: Image.Image, rng: random.Random, s: float) -> Image.Image:
    """Form furniture touching the text: ruled lines, underlines (dotted or solid), box edges, combs."""
    if rng.random() > 0.5 * s:
        return ink
    rule = Image.new("L", ink.size, 0)
    draw = ImageDraw.Draw(rule)
    w, h = ink.size
    strength = rng.randint(60, 230)
    width = rng.randint(1, 3)
    y = int(h * rng.uniform(0.72, 0.97))
    if rng.random() < 0.3:
        step = rng.choice([5, 8, 12])
        for x in range(0, w, step):
            draw.line((x, y, x + step // 2, y), fill=strength, width=width)
    elif rng.random() < 0.85:
        draw.line((0, y, w, y), fill=strength, width=width)
    if rng.random() < 0.2:  # the rule of the field above
        y2 = int(h * rng.uniform(0.0, 0.15))
        draw.line((0, y2, w, y2), fill=strength, width=width)
    if rng.random() < 0.2:  # the edges of the field's box, sometimes crossing the first or last letter
        x = rng.randint(0, max(1, w // 25))
        draw.line((x, 0, x, h), fill=strength, width=width)
        if rng.random() < 0.6:
            x = w - 1 - rng.randint(0, max(1, w // 25))
            draw.line((x, 0, x, h), fill=strength, width=width)
    if rng.random() < 0.06:  # a comb field: one tick between letters
        step = rng.randint(max(8, h // 3), max(9, h))
        for x in range(rng.randint(0, step), w, step):
            draw.line((x, int(h * rng.uniform(0.55, 0.8)), x, y), fill=strength, width=width)
    return Image.fromarray(np.maximum(np.asarray(ink), np.asarray(rule)))


# (ink, paper) colours seen on forms, as RGB; their luminance is what the greyscale model sees.
_INKS = (
    (10, 10, 12),
    (20, 30, 110),
    (30, 60, 160),
    (15, 35, 70),
    (120, 20, 20),
    (20, 90, 40),
    (70, 70, 75),
    (110, 110, 115),
)
_PAPERS = (
    (255, 255, 255),
    (250, 248, 240),
    (255, 250, 205),
    (225, 240, 255),
    (255, 228, 225),
    (230, 245, 225),
    (235, 235, 235),
    (245, 235, 215),
)


def _luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = rgb
    return 0.299 * r + 0.587 * g + 0.114 * b


def _compose(ink: Image.Image, rng: random.Random, s: float) -> Image.Image:
    """Ink coverage -> grey page: coloured ink on coloured paper, paper texture, some low contrast."""
    coverage = np.asarray(ink, dtype=np.float32) / 255.0
    paper = _luminance(rng.choice(_PAPERS)) if rng.random() < 0.6 * s else 255.0
    paper -= rng.uniform(0, 45 * s)
    ink_tone = _luminance(rng.choice(_INKS)) if rng.random() < 0.6 * s else rng.uniform(0, 40)
    if rng.random() < 0.15 * s:  # faint pencil or a washed-out copy
        ink_tone = paper - rng.uniform(70, 120)
    ink_tone = min(ink_tone, paper - 70)  # always legible to a person
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
