"""Upload checks: type by content, limits, integrity, pages, before anything is stored."""

from __future__ import annotations

import pytest
from PIL import Image

from inkwell.intake import Limits, UploadError, check_upload
from tests.documents import broken_pdf, encrypted_pdf, image_pdf, many_page_pdf
from tests.images import NOT_AN_IMAGE, declared_size_png, encode, line_png, truncated_png

LIMITS = Limits(max_file_bytes=5_000_000, max_image_pixels=20_000_000, max_pages=100, min_image_side=8, pdf_dpi=200)


@pytest.mark.parametrize(
    ("fmt", "media_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("TIFF", "image/tiff")],
)
def test_supported_image_formats_are_accepted(fmt: str, media_type: str) -> None:
    checked = check_upload(encode(Image.new("RGB", (40, 20), "white"), fmt), "scan.bin", LIMITS)
    assert (checked.media_type, checked.page_sizes) == (media_type, [(40, 20)])


def test_type_comes_from_the_bytes_not_the_name() -> None:
    assert check_upload(line_png("x"), "form.jpg", LIMITS).media_type == "image/png"
    with pytest.raises(UploadError) as raised:
        check_upload(NOT_AN_IMAGE, "form.png", LIMITS)
    assert (raised.value.status, raised.value.code) == (415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty_file"),
        (truncated_png(), 422, "invalid_image"),
        (declared_size_png(30000, 30000), 413, "image_too_large"),
        (encode(Image.new("RGB", (8, 8)), "GIF"), 415, "unsupported_media_type"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, 422, "invalid_image"),
        (encode(Image.new("RGB", (1, 1), "white")), 422, "image_too_small"),
    ],
    ids=["empty", "truncated", "bomb", "gif", "broken-header", "one-pixel"],
)
def test_bad_images_are_refused_with_a_reason(data: bytes, status: int, code: str) -> None:
    with pytest.raises(UploadError) as raised:
        check_upload(data, "bad.png", LIMITS)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert "bad.png" in raised.value.message


def test_file_size_limit() -> None:
    with pytest.raises(UploadError) as raised:
        check_upload(line_png("hello"), "big.png", Limits(100, 10**9, 10))
    assert (raised.value.status, raised.value.code) == (413, "file_too_large")


def test_every_tiff_page_counts_and_each_is_checked() -> None:
    pages = [Image.new("L", (100, 100), 255) for _ in range(3)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert check_upload(data, "fax.tif", LIMITS).page_sizes == [(100, 100)] * 3
    with pytest.raises(UploadError, match="page 1"):
        check_upload(data, "fax.tif", Limits(10**7, 9_999, 10))
    with pytest.raises(UploadError) as raised:
        check_upload(data, "fax.tif", Limits(10**7, 10**6, 2))
    assert raised.value.code == "too_many_pages"


def test_pdf_pages_are_measured_at_the_rendering_resolution() -> None:
    checked = check_upload(image_pdf([Image.new("L", (850, 1100), 255)] * 2, resolution=100), "form.pdf", LIMITS)
    # 8.5 x 11 inches at 200 dpi
    assert checked.media_type == "application/pdf" and checked.page_sizes == [(1700, 2200)] * 2
    with pytest.raises(UploadError) as raised:
        check_upload(
            image_pdf([Image.new("L", (850, 1100), 255)], resolution=100),
            "form.pdf",
            Limits(10**7, 3_000_000, 10, pdf_dpi=300),
        )
    assert raised.value.code == "image_too_large"


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        (lambda: many_page_pdf(500), 413, "too_many_pages"),
        (encrypted_pdf, 422, "encrypted_pdf"),
        (broken_pdf, 422, "invalid_document"),
    ],
    ids=["500-pages", "encrypted", "broken"],
)
def test_bad_pdfs_are_refused(make, status: int, code: str) -> None:
    with pytest.raises(UploadError) as raised:
        check_upload(make(), "scan.pdf", LIMITS)
    assert (raised.value.status, raised.value.code) == (status, code)


def test_a_tiff_whose_second_page_has_no_size_is_refused_not_crashed() -> None:
    """Found by the fuzz test: Pillow raises TypeError while counting the frames of such a file."""
    frames = [Image.new("L", (40, 20), "white"), Image.new("L", (30, 20), "white")]
    data = bytearray(encode(frames[0], "TIFF", save_all=True, append_images=frames[1:]))
    second_width = data.rfind(b"\x00\x01\x04\x00\x01\x00\x00\x00")  # tag 256 (ImageWidth) of the last directory
    data[second_width : second_width + 2] = b"\xfe\xfe"  # rename it to an unknown tag
    with pytest.raises(UploadError) as raised:
        check_upload(bytes(data), "scan.tif", LIMITS)
    assert (raised.value.status, raised.value.code) == (422, "invalid_image")
