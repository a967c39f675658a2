"""Pages for people: the upload form, a job's live status and results, the page images."""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from PIL import Image
from sqlalchemy import select

from inkwell.models import Job, Page
from inkwell.storage import get_page_file
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
    job_id, _ = accept_upload(submitted_files(request.files), source="web")
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
    """The page as uploaded; formats browsers cannot show (TIFF) are sent as PNG."""
    with database().session() as session:
        page = session.scalar(select(Page).where(Page.job_id == job_id, Page.number == number))
        stored = get_page_file(session, page.id) if page is not None else None
        if stored is None:
            abort(404, description="No such page.")
        data, media_type = stored.data, stored.media_type
    if media_type not in BROWSER_IMAGE_TYPES:
        with Image.open(io.BytesIO(data)) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "PNG")
        data, media_type = buffer.getvalue(), "image/png"
    response = Response(data, mimetype=media_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@views.get("/healthz")
def healthz() -> Response:
    """The web process is up (it checks nothing else)."""
    return Response('{"status": "ok"}', mimetype="application/json")
