"""Reading order of the text lines found on a page.

Rule: lines that overlap vertically form a row; a row is read left to right, rows top to bottom.
Where columns run side by side, a vertical gutter at least ``gutter`` wide that no line crosses,
for at least ``min_rows`` consecutive rows, the run of rows is read column by column, left
column first (a label and its value on one row stay together; two blocks of fields side by side
do not interleave).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from inkwell.fields import pair_fields


@dataclass(frozen=True)
class Box:
    """An axis-aligned extent of a line, with the index of the line it belongs to."""

    index: int
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def _rows(boxes: Sequence[Box]) -> list[list[Box]]:
    rows: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: (b.y0 + b.y1) / 2):
        if rows:
            row = rows[-1]
            top, bottom = min(b.y0 for b in row), max(b.y1 for b in row)
            overlap = min(bottom, box.y1) - max(top, box.y0)
            if overlap >= 0.5 * min(box.height, bottom - top):
                row.append(box)
                continue
        rows.append([box])
    return [sorted(row, key=lambda b: b.x0) for row in rows]


def _gaps(row: list[Box], width: float) -> list[tuple[float, float]]:
    """Free horizontal intervals of a row at least ``width`` wide (between its boxes only)."""
    free, reach = [], row[0].x1
    for box in row[1:]:
        if box.x0 - reach >= width:
            free.append((reach, box.x0))
        reach = max(reach, box.x1)
    return free


def _shared_gutter(rows: list[list[Box]], width: float) -> tuple[float, float] | None:
    """A free interval at least ``width`` wide common to every row (or None)."""
    candidates = _gaps(rows[0], width)
    for row in rows[1:]:
        merged = []
        for lo, hi in candidates:
            for a, b in _gaps(row, width):
                start, end = max(lo, a), min(hi, b)
                if end - start >= width:
                    merged.append((start, end))
        candidates = merged
        if not candidates:
            return None
    return candidates[0] if candidates else None


def _order(boxes: list[Box], gutter: float, min_rows: int) -> list[int]:
    rows = _rows(boxes)
    ordered: list[int] = []
    start = 0
    while start < len(rows):
        # the longest run of rows from here that shares a gutter
        end, split = start + 1, None
        probe = _shared_gutter(rows[start : start + min_rows], gutter) if start + min_rows <= len(rows) else None
        if probe is not None:
            end = start + min_rows
            while end < len(rows) and _shared_gutter(rows[start : end + 1], gutter) is not None:
                end += 1
            split = _shared_gutter(rows[start:end], gutter)
        if split is None:
            ordered.extend(box.index for box in rows[start])
            start += 1
            continue
        middle = (split[0] + split[1]) / 2
        block = [box for row in rows[start:end] for box in row]
        left = [b for b in block if b.x1 <= middle]
        right = [b for b in block if b.x1 > middle]
        ordered += _order(left, gutter, min_rows) + _order(right, gutter, min_rows)
        start = end
    return ordered


def reading_order(
    extents: Sequence[tuple[float, float, float, float]],
    kinds: Sequence[str | None] | None = None,
    gutter_heights: float = 4.0,
    min_rows: int = 3,
    confidences: Sequence[float | None] | None = None,
) -> list[int]:
    """Indices of ``extents`` (x0, y0, x1, y1) in reading order.

    The gutter width is ``gutter_heights`` times the median line height, so the rule scales
    with the scan's resolution. With the lines' text types (``kinds``: printed or handwritten),
    each label is followed directly by its value (inkwell/fields.py), wherever the rows put it;
    ``confidences`` are those of the text types (pair_fields).
    """
    if not extents:
        return []
    boxes = [Box(i, *map(float, e)) for i, e in enumerate(extents)]
    median_height = float(np.median([b.height for b in boxes])) or 1.0
    order = _order(boxes, gutter_heights * median_height, min_rows)
    if kinds is None:
        return order
    values = {
        pair.key: pair.values
        for pair in pair_fields(
            [(float(e[0]), float(e[1]), float(e[2]), float(e[3])) for e in extents], kinds, confidences
        )
    }
    owned = {value for pair_values in values.values() for value in pair_values}
    ordered: list[int] = []
    for index in order:
        if index in owned:
            continue  # read with its label
        ordered.append(index)
        ordered.extend(values.get(index, []))
    return ordered
