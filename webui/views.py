"""Pages for people: the upload form, a job's live status and results, the page images."""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from sqlalchemy import select

from inkwell.models import Job, Page, Upload
from inkwell.storage import page_image as stored_page_image
from inkwell.storage import upload_bytes
from webui.state import database, settings
from webui.uploads import accept_upload, submitted_files

views = Blueprint("views", __name__)

BROWSER_IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}


@views.get("/")
def index() -> str:
    with database().session() as session:
        jobs = session.scalars(select(Job).order_by(Job.created_at.desc()).limit(20)).all()
    return render_template("index.html", jobs=jobs, limits=settings())


@views.post("/jobs")
def upload() -> Response:
    job_id, _ = accept_upload(submitted_files(request.files), source="web", layout=request.form.get("layout", "page"))
    return redirect(url_for("views.job", job_id=job_id), code=303)


@views.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    with database().session() as session:
        found = session.get(Job, job_id)
        if found is None:
            abort(404, description=f"There is no job {job_id}.")
    return render_template("job.html", job=found)


@views.get("/jobs/<job_id>/pages/<int:number>/image")
def page_image(job_id: str, number: int) -> Response:
    """The page as the workers see it (upright, PDFs rasterised), or the upload itself before that."""
    with database().session() as session:
        page = session.scalar(select(Page).where(Page.job_id == job_id, Page.number == number))
        if page is None:
            abort(404, description="No such page.")
        prepared = stored_page_image(session, page.id)
        if prepared is not None:
            data, media_type = prepared.data, prepared.media_type
        else:
            upload = session.get(Upload, page.upload_id)
            if upload.media_type not in BROWSER_IMAGE_TYPES:
                abort(404, description="The page image is not ready yet.")
            data, media_type = upload_bytes(session, upload.id), upload.media_type
    response = Response(data, mimetype=media_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@views.get("/healthz")
def healthz() -> Response:
    """The web process is up (it checks nothing else)."""
    return Response('{"status": "ok"}', mimetype="application/json")
