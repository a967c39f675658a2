"""Fields of a form: each printed label paired with the handwritten value that belongs to it.

A value is the handwritten line to the label's right on the same row (the nearest, with no other
label between them), or else the handwritten line just below the label (starting within a few
label heights of its left edge, its top below the label's middle, with nothing between them);
handwritten lines of the same size stacked right under that value continue it. Each handwritten
line belongs to at most one label,
a value on the label's row first. Printed lines with no value (titles, blank fields) are not fields.

The text type is not trusted blindly: a value in a print-like hand can be taken for print (and
a label in a plain face for handwriting) with little confidence. Once the lines whose types are
sure are paired, a line whose type is unsure (confidence under ``UNSURE``) may still be the
value of a sure label it sits right of or under (or the label of a sure value it sits left of or
over), by the same layout rules: where a form puts a text says what it is as much as its look.

Pure Python over boxes and text types: the worker uses it to keep each label next to its value
in reading order, the web side to list a page's fields from its stored lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Box = tuple[float, float, float, float]

ROW_OVERLAP = 0.5  # of the smaller height that a label and a value on its row must share
BELOW_GAP = 2.5  # label heights: how far below the label its value may start
BELOW_INDENT = 4.0  # label heights: how far right of the label's left edge a value below may start
CONTINUE_GAP = 0.5  # value heights: a handwritten line this close under a value continues it ...
CONTINUE_HEIGHTS = 1.5  # ... when written at about the same size
UNSURE = 0.8  # a text type given with less confidence than this may be the other one


@dataclass(frozen=True)
class FieldPair:
    key: int  # index of the label line
    values: list[int]  # indices of its value lines, top to bottom


def _height(box: Box) -> float:
    return max(box[3] - box[1], 1.0)


def _vertical_overlap(a: Box, b: Box) -> float:
    return min(a[3], b[3]) - max(a[1], b[1])


def _starts_below(k: Box, v: Box) -> bool:
    """Does the value start below the label: its top below the label's middle, or, for a value
    much taller than the label, its top no higher than the label's and its middle below the label?

    The second case is a tall value in the box under its label on a tilted page: the upright box
    of a wide, slightly rotated line rises at one end by its width times the tilt (a 360 px
    value at 3 degrees: 19 px) and overflowing ascenders rise towards the label, so its box's
    top can be level with the label's middle though every letter is below it.
    """
    if v[1] >= (k[1] + k[3]) / 2:
        return True
    return v[1] >= k[1] and (v[1] + v[3]) / 2 >= k[3]


def _between_on_row(boxes: Sequence[Box], kinds: Sequence[str | None], key: int, value: int) -> bool:
    """Is some other printed line on the label's row between the label and this value?"""
    k, v = boxes[key], boxes[value]
    for i, box in enumerate(boxes):
        if i in (key, value) or kinds[i] != "printed":
            continue
        if _vertical_overlap(box, k) >= ROW_OVERLAP * _height(k) and k[2] <= box[0] + 1 and box[2] <= v[0] + 1:
            return True
    return False


def _between_below(boxes: Sequence[Box], kinds: Sequence[str | None], key: int, value: int) -> bool:
    """Is some other line between the label and a value below it?"""
    k, v = boxes[key], boxes[value]
    for i, box in enumerate(boxes):
        if i in (key, value):
            continue
        centre_y = (box[1] + box[3]) / 2
        if k[3] <= centre_y <= v[1] and box[0] < max(k[2], v[2]) and box[2] > min(k[0], v[0]):
            return True
    return False


def _candidates(
    boxes: Sequence[Box], kinds: Sequence[str | None], keys: set[int], values: set[int]
) -> list[tuple[int, float, int, int]]:
    """(0 = on the row / 1 = below, distance, key, value) for every label in ``keys`` and value in
    ``values`` that the layout allows (``kinds`` say which lines are printed, for what lies between)."""
    candidates: list[tuple[int, float, int, int]] = []
    for key in keys:
        k = boxes[key]
        height = _height(k)
        for value in values:
            if value == key:
                continue
            v = boxes[value]
            if _vertical_overlap(k, v) >= ROW_OVERLAP * min(height, _height(v)) and v[0] >= k[2] - 0.5 * height:
                if not _between_on_row(boxes, kinds, key, value):
                    candidates.append((0, v[0] - k[2], key, value))
            elif (
                _starts_below(k, v)
                and v[1] - k[3] <= BELOW_GAP * height
                and k[0] - 2 * height <= v[0] <= k[0] + BELOW_INDENT * height
            ):
                if not _between_below(boxes, kinds, key, value):
                    candidates.append((1, v[1] - k[3], key, value))
    return candidates


def pair_fields(
    boxes: Sequence[Box], kinds: Sequence[str | None], confidences: Sequence[float | None] | None = None
) -> list[FieldPair]:
    """Pair printed labels with handwritten values (see the module's docstring), in label order.

    ``confidences`` (of each line's text type; None where none was measured: taken as sure) let a line whose
    type is unsure be the value or label of a sure one.
    """
    printed = {i for i, kind in enumerate(kinds) if kind == "printed"}
    written = {i for i, kind in enumerate(kinds) if kind == "handwritten"}
    paired: dict[int, list[int]] = {}
    taken: set[int] = set()

    def pick(candidates: list[tuple[int, float, int, int]]) -> None:
        for _, _, key, value in sorted(candidates):
            if key in paired or key in taken or value in taken or value in paired:
                continue
            paired[key] = [value]
            taken.add(value)

    pick(_candidates(boxes, kinds, printed, written))
    if confidences is not None:
        unsure = {i for i, c in enumerate(confidences) if c is not None and c < UNSURE} & (printed | written)
        free = set(range(len(boxes))) - set(paired) - taken
        keys, values = (printed | (written & unsure)) & free, (written | (printed & unsure)) & free
        pick(
            [
                candidate
                for candidate in _candidates(boxes, kinds, keys, values)
                if not (candidate[2] in unsure and candidate[3] in unsure)  # one of the two is sure
            ]
        )
    for _key, lines in paired.items():  # handwritten lines stacked under a value continue it
        while True:
            last = boxes[lines[-1]]
            below = [
                i
                for i, b in enumerate(boxes)
                if kinds[i] == "handwritten"
                and i not in taken
                and i not in paired
                and 0 <= b[1] - last[3] <= CONTINUE_GAP * _height(last)
                and abs(b[0] - last[0]) <= _height(last)
                and max(_height(b), _height(last)) <= CONTINUE_HEIGHTS * min(_height(b), _height(last))
            ]
            if not below:
                break
            nearest = min(below, key=lambda i: boxes[i][1])
            lines.append(nearest)
            taken.add(nearest)
    return [FieldPair(key, paired[key]) for key in sorted(paired)]


def label_text(text: str) -> str:
    """A label as a field name: without the colon and blanks around it."""
    return text.strip().rstrip(":").strip()
