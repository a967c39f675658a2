"""Compact, self-describing storage of NumPy arrays (attention maps, embeddings) in binary columns."""

from __future__ import annotations

import io
import zlib

import numpy as np

_MAGIC = b"IWA1"


def pack_array(array: np.ndarray, dtype: str | np.dtype = "float16") -> bytes:
    """Store ``array`` as ``dtype`` in .npy format (shape and dtype travel with it), zlib-compressed."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=dtype), allow_pickle=False)
    return _MAGIC + zlib.compress(buffer.getvalue(), level=6)


def unpack_array(blob: bytes) -> np.ndarray:
    """Inverse of :func:`pack_array`."""
    if not blob.startswith(_MAGIC):
        raise ValueError("not a packed Inkwell array")
    return np.load(io.BytesIO(zlib.decompress(blob[len(_MAGIC) :])), allow_pickle=False)
