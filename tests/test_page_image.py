"""Turning uploads into upright RGB pages: EXIF orientation, colour modes and bit depths, TIFF and PDF pages."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.documents import image_pdf, image_tiff
from tests.images import encode
from worker.page_image import PageDecodeError, render_page

LIMIT = 50_000_000


def _marked(width: int = 60, height: int = 30) -> Image.Image:
    """White, with a black square in the top-left corner (so orientation can be checked)."""
    image = Image.new("RGB", (width, height), "white")
    image.paste((0, 0, 0), (0, 0, 10, 10))
    return image


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    data = encode(_marked(), "JPEG", exif=exif.tobytes(), quality=95)
    page = render_page(data, "image/jpeg", 0, LIMIT)
    assert page.size == (30, 60)
    pixels = np.asarray(page.convert("L"))
    assert pixels[:10, -10:].mean() < 60 and pixels[:10, :10].mean() > 200  # the mark moved to the top right


@pytest.mark.parametrize("mode", ["CMYK", "L", "LA", "P", "1", "I;16", "RGBA"])
def test_every_mode_becomes_rgb_paper_stays_white(mode: str) -> None:
    image = (
        _marked().convert(mode)
        if mode != "I;16"
        else _marked().convert("L").point(lambda v: v * 200, "I").convert("I;16")
    )
    fmt = "JPEG" if mode == "CMYK" else "TIFF" if mode == "I;16" else "PNG"
    page = render_page(encode(image, fmt), "image/x", 0, LIMIT)
    assert page.mode == "RGB" and page.size == (60, 30)
    pixels = np.asarray(page.convert("L"), dtype=float)
    assert pixels[20:, 20:].mean() > 200 and pixels[:10, :10].mean() < 60


def test_transparent_areas_become_white_paper() -> None:
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    page = render_page(encode(image, "PNG"), "image/png", 0, LIMIT)
    assert np.asarray(page).min() == 255


def test_pages_of_tiffs_and_pdfs() -> None:
    first, second = _marked(), _marked(80, 40)
    tiff = image_tiff([first, second], mode="L")
    assert render_page(tiff, "image/tiff", 1, LIMIT).size == (80, 40)
    pdf = image_pdf([first, second], resolution=72)
    assert render_page(pdf, "application/pdf", 1, LIMIT, dpi=144).size == (160, 80)
    with pytest.raises(PageDecodeError, match="more than"):
        render_page(pdf, "application/pdf", 0, 100, dpi=144)
    with pytest.raises(PageDecodeError):
        render_page(b"%PDF-1.4 broken", "application/pdf", 0, LIMIT)
