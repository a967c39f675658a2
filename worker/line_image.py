"""Aspect-preserving line preprocessing: scale a line crop to fit the model's input box, then pad.

The Microsoft TrOCR processors squash every line into a 384x384 square. For models trained on
line-shaped inputs (the bundled model among them) Inkwell instead scales the crop so that it fits
``height x width`` without changing its aspect ratio, and pads the rest. The same functions are
used by the trainer and by the recognizer so that a model sees at inference exactly what it saw
in training, and :class:`Placement` records where the crop landed so attention maps can be mapped
back onto the original crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

PadFill = Literal["mean", "zero"]


@dataclass(frozen=True)
class Placement:
    """Where a crop sits inside the padded model input, in input pixels."""

    content_width: int
    content_height: int
    top: int
    scale: float  # input pixels per original pixel


def fit_line(image: Image.Image, height: int, width: int, grayscale: bool) -> tuple[Image.Image, Placement]:
    """Resize ``image`` to ``height`` pixels high, or narrower than ``width`` if it is too long.

    Never upscales the box beyond ``height x width``; keeps the aspect ratio; returns the resized
    image (mode ``L`` when ``grayscale`` else ``RGB``) and its placement (vertically centred).
    """
    image = image.convert("L" if grayscale else "RGB")
    src_w, src_h = image.size
    scale = min(height / max(src_h, 1), width / max(src_w, 1))
    new_w = max(1, min(width, round(src_w * scale)))
    new_h = max(1, min(height, round(src_h * scale)))
    if (new_w, new_h) != (src_w, src_h):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return image, Placement(new_w, new_h, (height - new_h) // 2, scale)


def normalise_pixels(pixels: np.ndarray, mean: float = 0.5, std: float = 0.5) -> np.ndarray:
    """uint8 pixels -> float32 ``(x / 255 - mean) / std`` (TrOCR's normalisation by default)."""
    return (pixels.astype(np.float32) * (1.0 / 255.0) - mean) / std


def pad_line(
    pixels: np.ndarray,
    height: int,
    width: int,
    fill: PadFill,
    top: int | None = None,
    mean: float = 0.5,
    std: float = 0.5,
) -> np.ndarray:
    """Place normalised ``pixels`` (h x w or h x w x c uint8) at the left of a ``height x width`` canvas.

    ``fill="mean"`` pads with the crop's own mean value (padding looks like paper);
    ``fill="zero"`` pads with 0 in normalised space. Returns float32 ``c x height x width``.
    """
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    h, w, channels = pixels.shape
    if top is None:
        top = (height - h) // 2
    values = normalise_pixels(pixels, mean, std)
    pad_value = float(values.mean()) if fill == "mean" else 0.0
    canvas = np.full((channels, height, width), pad_value, dtype=np.float32)
    canvas[:, top : top + h, :w] = values.transpose(2, 0, 1)
    return canvas


def line_to_input(
    image: Image.Image,
    height: int,
    width: int,
    fill: PadFill,
    grayscale: bool,
    channels: int = 3,
    mean: float = 0.5,
    std: float = 0.5,
) -> tuple[np.ndarray, Placement]:
    """Fit and pad one line crop into a ``channels x height x width`` float32 model input."""
    fitted, placement = fit_line(image, height, width, grayscale)
    canvas = pad_line(np.asarray(fitted), height, width, fill, placement.top, mean, std)
    if canvas.shape[0] != channels:
        canvas = np.repeat(canvas[:1], channels, axis=0)
    return canvas, placement
