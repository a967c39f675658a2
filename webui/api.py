"""The JSON API, ``/api/v1``: submit jobs, poll them, fetch results, review lines.

Every endpoint needs a caller (see webui.auth): ``submit`` to send jobs, ``read`` to see them,
``review`` to correct lines and mark pages reviewed.
"""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
from flask import Blueprint, Response, jsonify, request, url_for
from PIL import Image
from pydantic import TypeAdapter, ValidationError

from inkwell.arrays import unpack_array
from inkwell.attention import attention_json, attention_maps, heat_map_png
from inkwell.exports import export_alto, export_csv, export_fields_csv, export_page_xml_zip
from inkwell.models import Job, Line, LineImage, Page
from inkwell.results import job_out, job_text, line_out, load_job, progress_of
from inkwell.review import (
    JobFilter,
    ReviewError,
    accept_line,
    correct_line,
    history,
    list_jobs,
    mark_page_reviewed,
    needs_review_counts,
    search_lines,
    similar_pages,
)
from inkwell.schemas import (
    AttentionOut,
    EmbeddingOut,
    JobList,
    JobSummary,
    LineAcceptance,
    LineCorrection,
    LineDetail,
    LineEditOut,
    PageReviewed,
    SearchResult,
    SimilarResult,
)
from webui.auth import principal, require, visible_or_404
from webui.errors import api_error
from webui.input_guard import bounded_int
from webui.openapi import openapi_document
from webui.state import database, settings
from webui.uploads import Submission, accept_upload, submitted_files

api = Blueprint("api", __name__, url_prefix="/api/v1")
MAX_TOKEN_INDEX = 100_000
LINE_PATCH = TypeAdapter(LineCorrection | LineAcceptance)

RESULT_FORMATS = {
    "json": ("application/json", lambda job: job_out(job).model_dump_json(), None),
    "txt": ("text/plain; charset=utf-8", job_text, "txt"),
    "csv": ("text/csv; charset=utf-8", export_csv, "csv"),
    "fields": ("text/csv; charset=utf-8", export_fields_csv, "fields.csv"),
    "alto": ("application/xml", export_alto, "alto.xml"),
    "pagexml": ("application/zip", export_page_xml_zip, "pagexml.zip"),
}


def _own_jobs_only() -> int | None:
    """The token id to filter on, when the caller may see only its own jobs."""
    caller = principal()
    return None if caller.all_jobs else caller.id


@api.post("/jobs")
@require("submit")
def submit_job() -> Response:
    """Accept one or more files as a new job; 202 with the job's URL in ``Location``."""
    caller = principal()
    accepted = accept_upload(
        Submission(
            files=submitted_files(request.files),
            source="api",
            layout=request.form.get("layout", "page"),
            user_id=caller.id if caller.kind == "user" else None,
            token_id=caller.id if caller.kind == "token" else None,
            idempotency_key=request.headers.get("Idempotency-Key"),
            callback_url=request.form.get("callback_url") or None,
        )
    )
    response = jsonify({"id": accepted.job_id, "status": "queued"})
    response.status_code = 202
    response.headers["Location"] = url_for("api.get_job", job_id=accepted.job_id)
    response.headers["Retry-After"] = str(settings().retry_after_seconds)
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _date(name: str) -> datetime | None:
    value = request.args.get(name)
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ReviewError(f"{name} must be a date like 2026-11-25") from None


@api.get("/jobs")
@require("read")
def list_jobs_view() -> Response:
    """Recent jobs, newest first: ``status``, ``since``, ``until`` and ``needs_review=1`` filter them."""
    threshold = settings().review_threshold
    status = request.args.get("status") or None
    if status not in (None, "queued", "processing", "succeeded", "failed", "partial"):
        return api_error(400, "invalid_status", "status is one of queued, processing, succeeded, failed, partial")
    try:
        query = JobFilter(
            status,
            _date("since"),
            _date("until"),
            request.args.get("needs_review") in ("1", "true"),
            _own_jobs_only(),
            bounded_int(request.args.get("limit"), "limit", 50, 1, 200),
        )
    except (ReviewError, ValueError) as error:
        return api_error(400, "invalid_filter", str(error))
    with database().session() as session:
        jobs = list_jobs(session, query, threshold)
        counts = needs_review_counts(session, [job.id for job in jobs], threshold)
        body = JobList(
            jobs=[
                JobSummary(
                    id=job.id,
                    status=job.status.value,
                    created_at=job.created_at,
                    finished_at=job.finished_at,
                    reviewed=job.reviewed_at is not None,
                    needs_review=counts.get(job.id, 0),
                    progress=progress_of(job),
                )
                for job in jobs
            ]
        )
    return Response(body.model_dump_json(), mimetype="application/json")


@api.get("/jobs/<job_id>")
@require("read")
def get_job(job_id: str) -> Response:
    """Status, progress and, page by page, the results read so far."""
    with database().session() as session:
        body = job_out(visible_or_404(load_job(session, job_id)))
    response = Response(body.model_dump_json(), mimetype="application/json")
    if body.status in ("queued", "processing"):
        response.headers["Retry-After"] = str(settings().retry_after_seconds)
    return response


@api.get("/jobs/<job_id>/result")
@require("read")
def get_result(job_id: str) -> Response:
    """The finished job's result: JSON (default), txt, csv, fields (CSV of label/value pairs), alto (ALTO XML v4) or pagexml (a ZIP of PAGE XML 2019)."""
    fmt = request.args.get("format", "json")
    if fmt not in RESULT_FORMATS:
        return api_error(400, "invalid_format", f"format must be one of {', '.join(RESULT_FORMATS)}")
    with database().session() as session:
        job = visible_or_404(load_job(session, job_id))
        if not job.status.finished:
            return api_error(
                409,
                "job_not_finished",
                f"job {job_id} is {job.status.value}; poll /api/v1/jobs/{job_id}",
                {"Retry-After": str(settings().retry_after_seconds)},
            )
        media_type, render, suffix = RESULT_FORMATS[fmt]
        body = render(job)
    response = Response(body, mimetype=media_type)
    if suffix:
        response.headers["Content-Disposition"] = f'attachment; filename="inkwell-{job_id}.{suffix}"'
    return response


def _visible_line(session, line_id: int) -> Line:
    line = session.get(Line, line_id)
    page = session.get(Page, line.page_id) if line is not None else None
    visible_or_404(session.get(Job, page.job_id) if page is not None else None)
    return line


def _line_body(session, line: Line) -> Response:
    edits = [
        LineEditOut(text=e.text, previous=e.previous, author=e.author, at=e.created_at)
        for e in history(session, line.id)
    ]
    body = LineDetail(**line_out(line).model_dump(), history=edits)
    return Response(body.model_dump_json(), mimetype="application/json")


@api.get("/lines/<row_id:line_id>")
@require("read")
def get_line(line_id: int) -> Response:
    """One line with its tokens and the history of its corrections."""
    with database().session() as session:
        return _line_body(session, _visible_line(session, line_id))


@api.patch("/lines/<row_id:line_id>")
@require("review")
def patch_line(line_id: int) -> Response:
    """Correct a line (``{"text": ...}``) or accept it as read (``{"reviewed": true}``); history is kept."""
    try:
        change = LINE_PATCH.validate_python(request.get_json(silent=True))
    except ValidationError:
        return api_error(400, "invalid_body", 'send {"text": "corrected text"} or {"reviewed": true} as JSON')
    author = principal().author
    with database().session() as session:
        line = _visible_line(session, line_id)
        try:
            if isinstance(change, LineCorrection):
                correct_line(session, line, change.text, author)
            else:
                accept_line(session, line, author)
        except ReviewError as error:
            return api_error(409, "not_reviewable", str(error))
        session.flush()
        return _line_body(session, line)


@api.get("/lines/<row_id:line_id>/image")
@require("read")
def line_image(line_id: int) -> Response:
    """The straightened line image the model read."""
    with database().session() as session:
        _visible_line(session, line_id)
        stored = session.get(LineImage, line_id)
        if stored is None:
            return api_error(404, "not_found", "this line has no image")
        return Response(stored.data, mimetype=stored.media_type, headers={"Cache-Control": "private, max-age=3600"})


@api.get("/lines/<row_id:line_id>/attention")
@require("read")
def line_attention(line_id: int) -> Response:
    """Where the model looked for each token: JSON maps, or ``?format=png[&token=i]`` a heat map over the line."""
    fmt = request.args.get("format", "json")
    with database().session() as session:
        line = _visible_line(session, line_id)
        if fmt == "json":
            return Response(AttentionOut(**attention_json(line)).model_dump_json(), mimetype="application/json")
        if fmt != "png":
            return api_error(400, "invalid_format", "format must be json or png")
        maps = attention_maps(line)
        stored = session.get(LineImage, line_id)
        if not maps.size or stored is None:
            return api_error(404, "not_found", "this line has no attention map")
        try:
            token = bounded_int(request.args.get("token"), "token", -1, 0, MAX_TOKEN_INDEX)
        except ValueError:
            return api_error(
                400, "invalid_token_index", f"token is a whole number, an index from 0 to {maps.shape[0] - 1}"
            )
        if token >= maps.shape[0]:  # a well-formed index this line does not have
            return api_error(
                404,
                "not_found",
                f"this line has {maps.shape[0]} tokens: token is an index from 0 to {maps.shape[0] - 1}",
            )
        png = heat_map_png(Image.open(io.BytesIO(stored.data)), maps, token if token >= 0 else None)
        return Response(png, mimetype="image/png")


def _visible_page(session, page_id: int) -> Page:
    page = session.get(Page, page_id)
    visible_or_404(session.get(Job, page.job_id) if page is not None else None)
    return page


@api.post("/pages/<row_id:page_id>/review")
@require("review")
def review_page(page_id: int) -> Response:
    """Mark a page reviewed; its job is reviewed when all its read pages are."""
    with database().session() as session:
        page = _visible_page(session, page_id)
        try:
            mark_page_reviewed(session, page, principal().author)
        except ReviewError as error:
            return api_error(409, "not_reviewable", str(error))
        job = session.get(Job, page.job_id)
        body = PageReviewed(page_id=page.id, reviewed=True, job_reviewed=job.reviewed_at is not None)
    return Response(body.model_dump_json(), mimetype="application/json")


@api.get("/pages/<row_id:page_id>/similar")
@require("read")
def similar(page_id: int) -> Response:
    """Other pages whose image embedding is closest (cosine): other scans of the same form, duplicates."""
    with database().session() as session:
        page = _visible_page(session, page_id)
        found = similar_pages(session, page, _own_jobs_only())
    body = SimilarResult(page_id=page_id, similar=found)
    return Response(body.model_dump_json(), mimetype="application/json")


def _embedding_response(kind: str, row_id: int, blob: bytes | None, model: str | None, layer: int | None) -> Response:
    """A stored embedding as JSON, or ``?format=npy`` as a NumPy .npy file (float32, 1-D)."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "npy"):
        return api_error(400, "invalid_format", "format must be json or npy")
    if blob is None:
        return api_error(404, "not_found", f"this {kind} has no embedding (not read yet, or read without one)")
    vector = unpack_array(blob).astype("float32").ravel()
    if fmt == "npy":
        buffer = io.BytesIO()
        np.save(buffer, vector, allow_pickle=False)
        return Response(
            buffer.getvalue(),
            mimetype="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="inkwell-{kind}-{row_id}-embedding.npy"'},
        )
    body = EmbeddingOut(
        kind=kind, id=row_id, model=model, layer=layer, dimensions=int(vector.size), embedding=vector.tolist()
    )
    return Response(body.model_dump_json(), mimetype="application/json")


@api.get("/pages/<row_id:page_id>/embedding")
@require("read")
def page_embedding(page_id: int) -> Response:
    """The page's image embedding (the mean of its lines'), with the model and encoder layer it comes from."""
    with database().session() as session:
        page = _visible_page(session, page_id)
        return _embedding_response("page", page.id, page.embedding, page.embedding_model, page.embedding_layer)


@api.get("/lines/<row_id:line_id>/embedding")
@require("read")
def line_embedding(line_id: int) -> Response:
    """The line's image embedding, with the model and encoder layer it comes from."""
    with database().session() as session:
        line = _visible_line(session, line_id)
        return _embedding_response("line", line.id, line.embedding, line.model, line.embedding_layer)


@api.get("/search")
@require("read")
def search() -> Response:
    """Lines whose text (as read or as corrected) contains every word of ``q``."""
    text = request.args.get("q", "").strip()
    if not text:
        return api_error(400, "missing_query", "give the words to look for in ?q=")
    with database().session() as session:
        hits = search_lines(session, text, _own_jobs_only())
    body = SearchResult(query=text, hits=hits)
    return Response(body.model_dump_json(), mimetype="application/json")


@api.get("/openapi.json")
def openapi() -> Response:
    """This API described in OpenAPI 3.1 (public, like the health checks)."""
    return jsonify(openapi_document())
