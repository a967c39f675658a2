"""Bytes of good and bad uploads, made in code so every test states exactly what it sends."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from tests.tiny_models import render_text_line


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def line_png(text: str) -> bytes:
    return encode(render_text_line(text))


def truncated_png(text: str = "hello world") -> bytes:
    data = line_png(text)
    return data[: len(data) // 2]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def declared_size_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width x height`` pixels, with almost no pixel data (a bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    compressed = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", compressed) + _chunk(b"IEND", b"")


NOT_AN_IMAGE = b"Dear Sir or Madam,\nplease find my application attached.\n"
