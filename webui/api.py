"""The JSON API, ``/api/v1``: submit jobs, poll them, fetch results."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from inkwell.exports import export_alto, export_csv, export_page_xml_zip
from inkwell.results import job_out, job_text, load_job
from webui.errors import api_error
from webui.openapi import openapi_document
from webui.state import database, settings
from webui.uploads import accept_upload, submitted_files

api = Blueprint("api", __name__, url_prefix="/api/v1")

RESULT_FORMATS = {
    "json": ("application/json", lambda job: job_out(job).model_dump_json(), None),
    "txt": ("text/plain; charset=utf-8", job_text, "txt"),
    "csv": ("text/csv; charset=utf-8", export_csv, "csv"),
    "alto": ("application/xml", export_alto, "alto.xml"),
    "pagexml": ("application/zip", export_page_xml_zip, "pagexml.zip"),
}


@api.post("/jobs")
def submit_job() -> Response:
    """Accept one or more page images as a new job; 202 with the job's URL in ``Location``."""
    job_id, _ = accept_upload(submitted_files(request.files), source="api", layout=request.form.get("layout", "page"))
    response = jsonify({"id": job_id, "status": "queued"})
    response.status_code = 202
    response.headers["Location"] = url_for("api.get_job", job_id=job_id)
    response.headers["Retry-After"] = str(settings().retry_after_seconds)
    return response


@api.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    """Status, progress and, page by page, the results read so far."""
    with database().session() as session:
        job = load_job(session, job_id)
        if job is None:
            return api_error(404, "not_found", f"no job with id {job_id!r}")
        body = job_out(job)
    response = Response(body.model_dump_json(), mimetype="application/json")
    if body.status in ("queued", "processing"):
        response.headers["Retry-After"] = str(settings().retry_after_seconds)
    return response


@api.get("/jobs/<job_id>/result")
def get_result(job_id: str) -> Response:
    """The finished job's result: JSON (default), txt, csv, alto (ALTO XML v4) or pagexml (a ZIP of PAGE XML 2019)."""
    fmt = request.args.get("format", "json")
    if fmt not in RESULT_FORMATS:
        return api_error(400, "invalid_format", f"format must be one of {', '.join(RESULT_FORMATS)}")
    with database().session() as session:
        job = load_job(session, job_id)
        if job is None:
            return api_error(404, "not_found", f"no job with id {job_id!r}")
        if not job.status.finished:
            return api_error(
                409, "job_not_finished", f"job {job_id} is {job.status.value}; poll /api/v1/jobs/{job_id}",
                {"Retry-After": str(settings().retry_after_seconds)},
            )
        media_type, render, suffix = RESULT_FORMATS[fmt]
        body = render(job)
    response = Response(body, mimetype=media_type)
    if suffix:
        response.headers["Content-Disposition"] = f'attachment; filename="inkwell-{job_id}.{suffix}"'
    return response


@api.get("/openapi.json")
def openapi() -> Response:
    """This API described in OpenAPI 3.1."""
    return jsonify(openapi_document())
