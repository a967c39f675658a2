"""Checking uploaded files before anything is stored: type by content, size, pixels, integrity."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Pillow format name -> media type we accept. Decided by the bytes, never by the file name.
ACCEPTED_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}


def _looks_like_accepted_format(data: bytes) -> bool:
    """Signature bytes of PNG, JPEG, WebP or TIFF: such a file that Pillow cannot open is damaged."""
    return (
        data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*"))
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
    )


class UploadError(Exception):
    """An upload Inkwell refuses; ``status`` and ``code`` become the HTTP error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CheckedImage:
    """What the check learned about an accepted image."""

    media_type: str
    width: int
    height: int


def check_image(data: bytes, filename: str, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Accept ``data`` only if it is a complete, decodable PNG/JPEG/WebP/TIFF within the limits.

    The header is read first so that an image declaring more than ``max_pixels`` is refused
    before a single pixel is decoded (a decompression bomb never gets to allocate memory); then
    every frame is decoded in full, which is the only reliable test for truncated files.
    """
    name = filename or "upload"
    if not data:
        raise UploadError(400, "empty_file", f"{name}: the file is empty")
    if len(data) > max_bytes:
        raise UploadError(413, "file_too_large", f"{name}: {len(data)} bytes is more than the limit of {max_bytes}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            if _looks_like_accepted_format(data):
                raise UploadError(422, "invalid_image", f"{name}: the image is damaged and cannot be read") from None
            raise UploadError(415, "unsupported_media_type", f"{name}: not an image in a supported format (PNG, JPEG, WebP, TIFF)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(413, "image_too_large", f"{name}: the image has too many pixels") from None
        except Exception as error:  # noqa: BLE001 - Pillow raises many types for broken headers
            raise UploadError(422, "invalid_image", f"{name}: the image cannot be read ({error})") from None
        with image:
            if image.format not in ACCEPTED_FORMATS:
                raise UploadError(415, "unsupported_media_type", f"{name}: {image.format} images are not accepted (PNG, JPEG, WebP, TIFF)")
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
            if width * height * frames > max_pixels:
                raise UploadError(
                    413, "image_too_large",
                    f"{name}: {width}x{height} pixels{f' x {frames} pages' if frames > 1 else ''} is more than the limit of {max_pixels} pixels",
                )
            try:
                for frame in range(frames):
                    image.seek(frame)
                    image.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UploadError(413, "image_too_large", f"{name}: the image has too many pixels") from None
            except Exception as error:  # noqa: BLE001 - truncated or corrupt data
                raise UploadError(422, "invalid_image", f"{name}: the image is damaged or incomplete ({error})") from None
            return CheckedImage(ACCEPTED_FORMATS[image.format], width, height)
