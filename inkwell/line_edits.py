"""Repairing a page's lines by hand: draw a new one, move or resize a box, split one in two, merge
two, delete one. Every edit is kept in the line history (or, for a deletion, the audit log), the
page's reading order is renumbered, and each line whose box changed loses its reading until the
model reads it again (the caller sends the returned line ids to the ``lines`` queue, after commit).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from inkwell.errors import ErrorCode, Refused
from inkwell.jobs import refresh_job
from inkwell.models import AuditEntry, Job, Line, LineEdit, Page, PageStatus
from inkwell.reading_order import reading_order
from inkwell.storage import delete_line_image

MIN_SIDE = 4  # pixels: a smaller box holds no text, and is almost always a slip of the mouse


def rectangle(bbox: Sequence[int]) -> list[list[int]]:
    """The corner points (top-left, top-right, bottom-right, bottom-left) of an upright box."""
    x0, y0, x1, y1 = bbox
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def checked_box(page: Page, bbox: Sequence[float]) -> list[int]:
    """``bbox`` as whole pixels, clipped to the page; refused when it leaves nothing of a line."""
    if len(bbox) != 4:
        raise Refused(ErrorCode.INVALID_LINE_EDIT, "a box is [x0, y0, x1, y1] in page pixels")
    x0, y0, x1, y1 = (int(round(v)) for v in bbox)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    width, height = page.width or 0, page.height or 0
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < MIN_SIDE or y1 - y0 < MIN_SIDE:
        raise Refused(
            ErrorCode.INVALID_LINE_EDIT,
            f"the box must lie on the page ({width}x{height} pixels) and be at least {MIN_SIDE} pixels on each side",
        )
    return [x0, y0, x1, y1]


def _editable(page: Page) -> None:
    if page.status != PageStatus.SUCCEEDED:
        raise Refused(
            ErrorCode.NOT_EDITABLE,
            f"page {page.number} is {page.status.value}: its lines can be edited once it has been read",
        )


def _to_read_again(session: Session, line: Line, bbox: list[int]) -> None:
    """Give ``line`` its new box and forget what was read in the old one (and any correction of it)."""
    line.bbox, line.polygon = bbox, rectangle(bbox)
    line.text = line.confidence = line.tokens = line.attention = line.embedding = None
    line.corrected_text = line.corrected_by = line.corrected_at = None
    line.reviewed_at = line.reviewed_by = None
    line.recognized_at = None
    delete_line_image(session, line.id)  # cut again from the page by the worker


def _record(
    session: Session, line: Line, action: str, author: str, previous_text: str, previous_bbox: list[int] | None
) -> None:
    session.add(
        LineEdit(
            line_id=line.id,
            action=action,
            text="",
            previous=previous_text,
            author=author,
            bbox=list(line.bbox),
            previous_bbox=previous_bbox,
        )
    )


def renumber(session: Session, page: Page) -> None:
    """Number the page's lines in reading order again (the line finder's rule), and recount the job."""
    session.flush()
    lines = list(session.scalars(select(Line).where(Line.page_id == page.id)))
    order = reading_order(
        [(x0, y0, x1, y1) for x0, y0, x1, y1 in (line.bbox for line in lines)],
        [line.text_type for line in lines],
        confidences=[line.text_type_confidence for line in lines],
    )
    # Two steps: (page, number) is unique, and an intermediate state must never collide.
    session.execute(update(Line).where(Line.page_id == page.id).values(number=-Line.number - 1_000_000))
    for number, index in enumerate(order, start=1):
        lines[index].number = number
    page.line_count = len(lines)
    if page.reviewed_at is not None:  # the page changed after it was marked reviewed
        page.reviewed_at = page.reviewed_by = None
        session.get_one(Job, page.job_id).reviewed_at = None
    session.flush()
    session.expire(page, ["lines"])
    refresh_job(session, session.get_one(Job, page.job_id))


def add_line(session: Session, page: Page, bbox: Sequence[float], author: str) -> Line:
    """A line drawn by a reviewer where the line finder found none; it waits to be read."""
    _editable(page)
    box = checked_box(page, bbox)
    number = (
        session.scalar(select(Line.number).where(Line.page_id == page.id).order_by(Line.number.desc()).limit(1)) or 0
    ) + 1
    line = Line(page_id=page.id, number=number, bbox=box, polygon=rectangle(box))
    session.add(line)
    session.flush()
    _record(session, line, "drawn", author, "", None)
    renumber(session, page)
    return line


def move_line(session: Session, page: Page, line: Line, bbox: Sequence[float], author: str) -> Line:
    """Move or resize a line's box; it is read again."""
    _editable(page)
    box = checked_box(page, bbox)
    if box == list(line.bbox):
        return line
    previous_bbox, previous_text = list(line.bbox), line.final_text
    _to_read_again(session, line, box)
    _record(session, line, "moved", author, previous_text, previous_bbox)
    renumber(session, page)
    return line


def split_line(session: Session, page: Page, line: Line, at: float, axis: str, author: str) -> tuple[Line, Line]:
    """Cut a line in two at page coordinate ``at``: ``axis='x'`` left and right, ``'y'`` above and below.

    The first part keeps the line's id (and history); the second is a new line. Both are read again.
    """
    _editable(page)
    x0, y0, x1, y1 = line.bbox
    if axis not in ("x", "y"):
        raise Refused(
            ErrorCode.INVALID_LINE_EDIT, "axis is 'x' (cut into left and right) or 'y' (cut into top and bottom)"
        )
    low, high = (x0, x1) if axis == "x" else (y0, y1)
    cut = int(round(at))
    if not low + MIN_SIDE <= cut <= high - MIN_SIDE:
        raise Refused(
            ErrorCode.INVALID_LINE_EDIT,
            f"the cut must fall inside the line, between {low + MIN_SIDE} and {high - MIN_SIDE}",
        )
    first, second = ([x0, y0, cut, y1], [cut, y0, x1, y1]) if axis == "x" else ([x0, y0, x1, cut], [x0, cut, x1, y1])
    previous_bbox, previous_text = list(line.bbox), line.final_text
    _to_read_again(session, line, first)
    _record(session, line, "split", author, previous_text, previous_bbox)
    other = Line(
        page_id=page.id,
        number=line.number + 1_000_000,
        bbox=second,
        polygon=rectangle(second),
        text_type=line.text_type,
        text_type_confidence=line.text_type_confidence,  # both halves are as sure as the whole was
    )
    session.add(other)
    session.flush()
    _record(session, other, "split", author, previous_text, previous_bbox)
    renumber(session, page)
    return line, other


def merge_lines(session: Session, page: Page, lines: Sequence[Line], author: str) -> Line:
    """Join lines of one page into the first of them in reading order (the box around all); the others go."""
    _editable(page)
    if len(lines) < 2 or len({line.id for line in lines}) != len(lines):
        raise Refused(ErrorCode.INVALID_LINE_EDIT, "merge needs two or more different lines")
    if any(line.page_id != page.id for line in lines):
        raise Refused(ErrorCode.INVALID_LINE_EDIT, "only lines of the same page can be merged")
    ordered = sorted(lines, key=lambda line: line.number)
    keep, others = ordered[0], ordered[1:]
    box = [
        min(line.bbox[0] for line in ordered),
        min(line.bbox[1] for line in ordered),
        max(line.bbox[2] for line in ordered),
        max(line.bbox[3] for line in ordered),
    ]
    previous_bbox = list(keep.bbox)
    previous_text = " ".join(line.final_text for line in ordered if line.final_text)
    for other in others:
        _audit(session, author, "line.merged", page, other, {"into": keep.id})
        session.delete(other)
    session.flush()
    _to_read_again(session, keep, box)
    _record(session, keep, "merged", author, previous_text, previous_bbox)
    renumber(session, page)
    return keep


def _audit(session: Session, author: str, action: str, page: Page, line: Line, details: dict[str, object]) -> None:
    """Keep what a line that is going away was (its box and final text) in the audit log."""
    session.add(
        AuditEntry(
            actor=author,
            action=action,
            job_id=page.job_id,
            page_id=page.id,
            line_id=line.id,
            details={**details, "bbox": list(line.bbox), "text": line.final_text},
        )
    )


def delete_line(session: Session, page: Page, line: Line, author: str) -> None:
    """Remove a line that is not text (a stamp, a rule); what it was stays in the audit log."""
    _editable(page)
    _audit(session, author, "line.deleted", page, line, {"number": line.number})
    session.delete(line)
    renumber(session, page)
