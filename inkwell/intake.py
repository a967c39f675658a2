"""Checking uploaded files before anything is stored: type by content, size, pages, pixels, integrity.

Images (PNG, JPEG, WebP, TIFF with all its pages) are decoded in full, the only reliable test for
truncated files, but only after their header has shown that no page is larger than the pixel
limit: a decompression bomb never gets to allocate its memory. PDFs are opened with pdfium and
every page's size at the rendering resolution is checked; they are rasterised later, by a worker.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Pillow format name -> media type we accept. Decided by the bytes, never by the file name.
IMAGE_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "TIFF": "image/tiff"}
PDF = "application/pdf"
SUPPORTED = "PNG, JPEG, WebP, TIFF or PDF"


class UploadError(Exception):
    """An upload Inkwell refuses; ``status`` and ``code`` become the HTTP error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one upload may be; built from Settings."""

    max_file_bytes: int
    max_image_pixels: int  # per page
    max_pages: int
    min_image_side: int = 8
    pdf_dpi: int = 200


@dataclass(frozen=True)
class CheckedUpload:
    """What the check learned about an accepted file: its type and each page's size in pixels."""

    media_type: str
    page_sizes: list[tuple[int, int]]

    @property
    def page_count(self) -> int:
        return len(self.page_sizes)


def _looks_like_supported_image(data: bytes) -> bool:
    """Signature bytes of PNG, JPEG, WebP or TIFF: such a file that Pillow cannot open is damaged."""
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def check_upload(data: bytes, filename: str, limits: Limits) -> CheckedUpload:
    """Accept ``data`` only if it is a complete, readable image or PDF within ``limits``."""
    name = filename or "upload"
    if not data:
        raise UploadError(400, "empty_file", f"{name}: the file is empty")
    if len(data) > limits.max_file_bytes:
        raise UploadError(
            413, "file_too_large", f"{name}: {len(data)} bytes is more than the limit of {limits.max_file_bytes}"
        )
    if data.lstrip()[:5] == b"%PDF-":
        return _check_pdf(data, name, limits)
    return _check_image(data, name, limits)


def _check_size(name: str, page: int, pages: int, width: int, height: int, limits: Limits) -> None:
    where = f"{name}{f' page {page}' if pages > 1 else ''}"
    if width * height > limits.max_image_pixels:
        raise UploadError(
            413,
            "image_too_large",
            f"{where}: {width}x{height} pixels is more than the limit of {limits.max_image_pixels} pixels per page",
        )
    if min(width, height) < limits.min_image_side:
        raise UploadError(
            422,
            "image_too_small",
            f"{where}: {width}x{height} pixels is too small to hold text (at least {limits.min_image_side} pixels a side)",
        )


def _check_page_count(name: str, count: int, limits: Limits) -> None:
    if count == 0:
        raise UploadError(422, "invalid_document", f"{name}: the document has no pages")
    if count > limits.max_pages:
        raise UploadError(
            413, "too_many_pages", f"{name}: {count} pages is more than the limit of {limits.max_pages} pages per job"
        )


def _check_image(data: bytes, name: str, limits: Limits) -> CheckedUpload:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            if _looks_like_supported_image(data):
                raise UploadError(422, "invalid_image", f"{name}: the image is damaged and cannot be read") from None
            raise UploadError(
                415, "unsupported_media_type", f"{name}: not a file in a supported format ({SUPPORTED})"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError(413, "image_too_large", f"{name}: the image has too many pixels") from None
        except Exception as error:  # noqa: BLE001 - Pillow raises many types for broken headers
            raise UploadError(422, "invalid_image", f"{name}: the image cannot be read ({error})") from None
        with image:
            if image.format not in IMAGE_FORMATS:
                raise UploadError(
                    415, "unsupported_media_type", f"{name}: {image.format} files are not accepted ({SUPPORTED})"
                )
            sizes = []
            try:
                # Counting frames walks every TIFF directory header, so a broken one fails here.
                frames = getattr(image, "n_frames", 1)
                _check_page_count(name, frames, limits)
                for frame in range(frames):
                    image.seek(frame)
                    _check_size(name, frame + 1, frames, *image.size, limits)
                    sizes.append(image.size)
                for frame in range(frames):  # decode only once every header passed
                    image.seek(frame)
                    image.load()
            except UploadError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UploadError(413, "image_too_large", f"{name}: the image has too many pixels") from None
            except Exception as error:  # noqa: BLE001 - truncated or corrupt data
                raise UploadError(
                    422, "invalid_image", f"{name}: the image is damaged or incomplete ({error})"
                ) from None
            return CheckedUpload(IMAGE_FORMATS[image.format], sizes)


def _check_pdf(data: bytes, name: str, limits: Limits) -> CheckedUpload:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as error:
        if "password" in str(error).lower():
            raise UploadError(
                422, "encrypted_pdf", f"{name}: the PDF is protected by a password; send it unprotected"
            ) from None
        raise UploadError(422, "invalid_document", f"{name}: the PDF cannot be read ({error})") from None
    try:
        count = len(document)
        _check_page_count(name, count, limits)
        scale = limits.pdf_dpi / 72.0
        sizes = []
        for index in range(count):
            try:
                width, height = document.get_page_size(index)
            except pdfium.PdfiumError as error:
                raise UploadError(
                    422, "invalid_document", f"{name} page {index + 1}: the page cannot be read ({error})"
                ) from None
            pixels = (max(1, round(width * scale)), max(1, round(height * scale)))
            _check_size(name, index + 1, count, *pixels, limits)
            sizes.append(pixels)
        return CheckedUpload(PDF, sizes)
    finally:
        document.close()
