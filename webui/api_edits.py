"""API routes that change a page's lines (draw, move, split, merge, delete) and delete whole jobs.

Registered on the ``/api/v1`` blueprint (imported by the app factory). Geometry edits are
committed first, then the changed lines are sent, by task name, to the model queue
(inkwell.queue); the web side never reads a line itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Response, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from inkwell.errors import ErrorCode, Refused
from inkwell.jobs_admin import delete_job
from inkwell.line_edits import add_line, delete_line, merge_lines, move_line, split_line
from inkwell.models import Job, Line, Page
from inkwell.queue import enqueue_line_reading
from inkwell.results import line_out
from inkwell.schemas import JobDeleted, LineGeometry, LineMerge, LineSplit, NewLine, PageLines
from webui.api import _line_body, _visible_line, _visible_page, api
from webui.auth import principal, require, visible_or_404
from webui.state import celery_app, database

Body = TypeVar("Body", bound=BaseModel)


def _body(model: type[Body], example: str) -> Body:
    try:
        return model.model_validate(request.get_json(silent=True))
    except ValidationError:
        raise Refused(ErrorCode.INVALID_BODY, f"send {example} as JSON") from None


def _page_lines(page_id: int, changed: list[int]) -> PageLines:
    with database().session() as session:
        lines = session.scalars(select(Line).where(Line.page_id == page_id).order_by(Line.number))
        body = [line_out(line) for line in lines]
    queued = enqueue_line_reading(celery_app(), changed) if changed else True
    return PageLines(page_id=page_id, lines=body, changed=changed, queued=queued)


def _edit(page_id: int, action: Callable[[object, Page], list[int]], status: int = 200) -> Response:
    """Run ``action`` (returns the ids of lines to read again) in one transaction, then answer with the page's lines."""
    with database().session() as session:
        page = _visible_page(session, page_id)
        changed = action(session, page)  # a Refused edit rolls the session back
    # committed: only now may a worker look for the lines
    return Response(_page_lines(page_id, changed).model_dump_json(), status=status, mimetype="application/json")


def _page_of_line(line_id: int) -> int:
    with database().session() as session:
        return _visible_line(session, line_id).page_id


@api.post("/pages/<row_id:page_id>/lines")
@require("review")
def draw_line(page_id: int) -> Response:
    """Add a line where the line finder found none (``{"bbox": [x0, y0, x1, y1]}``); it is cut out and read."""
    body = _body(NewLine, '{"bbox": [x0, y0, x1, y1]}')
    return _edit(page_id, lambda session, page: [add_line(session, page, body.bbox, principal().author).id], 201)


@api.get("/pages/<row_id:page_id>/lines")
@require("read")
def page_lines(page_id: int) -> Response:
    """The page's lines in reading order (a line being read again has no text yet)."""
    with database().session() as session:
        _visible_page(session, page_id)
        lines = [
            line_out(line)
            for line in session.scalars(select(Line).where(Line.page_id == page_id).order_by(Line.number))
        ]
    return Response(
        PageLines(page_id=page_id, lines=lines, changed=[], queued=True).model_dump_json(), mimetype="application/json"
    )


@api.post("/pages/<row_id:page_id>/lines/merge")
@require("review")
def merge(page_id: int) -> Response:
    """Join two or more lines of the page into one (``{"line_ids": [...]}``), read again."""
    body = _body(LineMerge, '{"line_ids": [id, id, ...]}')

    def action(session, page: Page) -> list[int]:
        lines = [session.get(Line, line_id) for line_id in body.line_ids]
        if any(line is None or line.page_id != page.id for line in lines):
            raise Refused(ErrorCode.NOT_FOUND, "every line to merge must be a line of this page")
        return [merge_lines(session, page, lines, principal().author).id]

    return _edit(page_id, action)


@api.post("/lines/<row_id:line_id>/split")
@require("review")
def split(line_id: int) -> Response:
    """Cut a line in two at page coordinate ``at`` (``{"at": x, "axis": "x"}``); both parts are read again."""
    body = _body(LineSplit, '{"at": <page coordinate>, "axis": "x" or "y"}')
    page_id = _page_of_line(line_id)

    def action(session, page: Page) -> list[int]:
        first, second = split_line(session, page, session.get(Line, line_id), body.at, body.axis, principal().author)
        return [first.id, second.id]

    return _edit(page_id, action)


@api.delete("/lines/<row_id:line_id>")
@require("review")
def remove_line(line_id: int) -> Response:
    """Delete a line (not text: a stamp, a rule); recorded in the audit log."""
    page_id = _page_of_line(line_id)

    def action(session, page: Page) -> list[int]:
        delete_line(session, page, session.get(Line, line_id), principal().author)
        return []

    return _edit(page_id, action)


def move_box(line_id: int, body: LineGeometry) -> Response:
    """PATCH /lines/<id> with ``{"bbox": [...]}``: move or resize the line's box; it is read again."""
    page_id = _page_of_line(line_id)
    changed: list[int] = []
    with database().session() as session:
        page = _visible_page(session, page_id)
        line = session.get(Line, line_id)
        before = list(line.bbox)
        move_line(session, page, line, body.bbox, principal().author)
        if list(line.bbox) != before:
            changed = [line.id]
    with database().session() as session:
        response = _line_body(session, session.get(Line, line_id))
    if changed:  # committed: only now may a worker look for the line
        enqueue_line_reading(celery_app(), changed)
    return response


@api.delete("/jobs/<job_id>")
@require("delete")
def remove_job(job_id: str) -> Response:
    """Delete a job with all its data (files, page images, lines, history); recorded in the audit log."""
    with database().session() as session:
        job = visible_or_404(session.get(Job, job_id))
        summary = delete_job(session, job, principal().author)
    return Response(JobDeleted(**summary).model_dump_json(), mimetype="application/json")
