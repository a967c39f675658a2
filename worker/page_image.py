"""Decoding stored page bytes into an upright RGB image."""

from __future__ import annotations

import io

from PIL import Image, ImageOps


class PageDecodeError(Exception):
    """The stored bytes do not decode into an image (the page fails with this reason)."""


def decode_page(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data`` (first frame), apply EXIF orientation, return RGB.

    Greyscale, palette, 16-bit, CMYK and alpha images all come out as plain RGB; transparent
    areas become white paper rather than black.
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > max_pixels:
                raise PageDecodeError(f"{opened.width}x{opened.height} pixels is more than the limit of {max_pixels}")
            image = ImageOps.exif_transpose(opened)
            image.load()
            return _to_rgb(image)
    except PageDecodeError:
        raise
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for bad data
        raise PageDecodeError(f"the image cannot be decoded ({error})") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits by the actual range, not by clipping.
        extrema = image.getextrema()
        low, high = extrema if isinstance(extrema[0], (int, float)) else extrema[0]
        scale = 255.0 / max(high - low, 1)
        return image.point(lambda v: (v - low) * scale).convert("L").convert("RGB")
    return image.convert("RGB")
