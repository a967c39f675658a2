"""Multi-page documents for tests: PDFs (good, huge, encrypted, broken) and TIFFs, made in code."""

from __future__ import annotations

import io

from PIL import Image


def image_pdf(pages: list[Image.Image], resolution: float = 150.0) -> bytes:
    """A PDF with one scanned image per page (as a scanner's PDF is), at ``resolution`` dpi."""
    buffer = io.BytesIO()
    first, *rest = [page.convert("RGB") for page in pages]
    first.save(buffer, "PDF", save_all=True, append_images=rest, resolution=resolution)
    return buffer.getvalue()


def image_tiff(pages: list[Image.Image], mode: str = "L", compression: str = "tiff_lzw") -> bytes:
    buffer = io.BytesIO()
    first, *rest = [page.convert(mode) for page in pages]
    first.save(buffer, "TIFF", save_all=True, append_images=rest, compression=compression)
    return buffer.getvalue()


def many_page_pdf(count: int) -> bytes:
    """``count`` blank letter-size pages."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(count):
        writer.add_blank_page(612, 792)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def encrypted_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def broken_pdf() -> bytes:
    """A PDF header and a cross-reference table pointing nowhere."""
    return (
        b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\nxref\n0 2\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        + b"\x00" * 64
    )


def pdf_with_a_broken_page(good_pages: list[Image.Image]) -> bytes:
    """The scanned pages, then a page whose content stream is garbage."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, StreamObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(image_pdf(good_pages))))
    page = writer.add_blank_page(612, 792)
    garbage = StreamObject()
    garbage.set_data(b"q 1 0 0 1 0 0 cm BT /F9 12 Tf (never) Tj ET {{{ \x00\x01\x02 Do Do Do")
    page[NameObject("/Contents")] = writer._add_object(garbage)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()
