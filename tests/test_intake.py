"""Upload checks: type by content, limits, integrity, before anything is stored."""

from __future__ import annotations

import pytest
from PIL import Image

from inkwell.intake import UploadError, check_image
from tests.images import NOT_AN_IMAGE, declared_size_png, encode, line_png, truncated_png

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 20_000_000}


@pytest.mark.parametrize(("fmt", "media_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("TIFF", "image/tiff")])
def test_supported_formats_are_accepted(fmt: str, media_type: str) -> None:
    checked = check_image(encode(Image.new("RGB", (40, 20), "white"), fmt), "scan.bin", **LIMITS)
    assert (checked.media_type, checked.width, checked.height) == (media_type, 40, 20)


def test_type_comes_from_the_bytes_not_the_name() -> None:
    assert check_image(line_png("x"), "form.jpg", **LIMITS).media_type == "image/png"
    with pytest.raises(UploadError) as raised:
        check_image(NOT_AN_IMAGE, "form.png", **LIMITS)
    assert (raised.value.status, raised.value.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (truncated_png(), 422, "invalid_image"),
        (declared_size_png(30000, 30000), 413, "image_too_large"),
        (encode(Image.new("RGB", (8, 8)), "GIF"), 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "invalid_image"),
    ],
    ids=["empty", "truncated", "bomb", "gif", "broken-header"],
)
def test_bad_uploads_are_refused_with_a_reason(data: bytes, status: int, code: str) -> None:
    with pytest.raises(UploadError) as raised:
        check_image(data, "bad.png", **LIMITS)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert "bad.png" in raised.value.message


def test_file_size_limit() -> None:
    with pytest.raises(UploadError) as raised:
        check_image(line_png("hello"), "big.png", max_bytes=100, max_pixels=10**9)
    assert (raised.value.status, raised.value.code) == (413, "file_too_large")


def test_pixel_limit_counts_every_tiff_page() -> None:
    pages = [Image.new("L", (100, 100), 255) for _ in range(3)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert check_image(data, "fax.tif", max_bytes=10**7, max_pixels=30_000).media_type == "image/tiff"
    with pytest.raises(UploadError, match="3 pages"):
        check_image(data, "fax.tif", max_bytes=10**7, max_pixels=29_999)
