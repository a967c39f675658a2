"""Cross-attention maps for people: as JSON for the review page, as heat-map images for anyone."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from inkwell.arrays import unpack_array
from inkwell.geometry import LINE_CROP_PAD
from inkwell.models import Line


def attention_maps(line: Line) -> np.ndarray:
    """tokens x grid_h x grid_w float32 (each map sums to 1), empty when none was stored."""
    if line.attention is None:
        return np.zeros((0, 0, 0), np.float32)
    return unpack_array(line.attention).astype(np.float32)


def attention_json(line: Line) -> dict[str, Any]:
    """Tokens with their confidences and, per token, its map over the line image's grid."""
    maps = attention_maps(line)
    return {
        "line_id": line.id,
        "text": line.text,
        "tokens": line.tokens or [],
        "grid": list(maps.shape[1:]) if maps.size else [0, 0],
        "maps": np.round(maps, 4).tolist(),
        "polygon": line.polygon,
        "bbox": line.bbox,
        "crop_pad": LINE_CROP_PAD
        if line.polygon
        else 0.0,  # the grid covers the polygon grown by this many line heights
    }


def heat_map_png(line_image: Image.Image, maps: np.ndarray, token: int | None) -> bytes:
    """The line image in grey with the attention of ``token`` (or of the whole line) in red over it."""
    if not maps.size:
        raise ValueError("this line has no attention map")
    heat = maps[token] if token is not None else maps.max(axis=0)
    heat = heat / max(float(heat.max()), 1e-12)
    grid = Image.fromarray((heat * 255).astype(np.uint8), "L").resize(line_image.size, Image.Resampling.BILINEAR)
    base = np.asarray(line_image.convert("L"), dtype=np.float32)[:, :, None].repeat(3, axis=2)
    alpha = np.asarray(grid, dtype=np.float32)[:, :, None] / 255.0 * 0.65
    red = np.array([220.0, 30.0, 30.0])
    blended = base * (1 - alpha) + red * alpha
    buffer = io.BytesIO()
    Image.fromarray(blended.clip(0, 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()
