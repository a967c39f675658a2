"""Pages for reviewers: sign-in, jobs list and upload, a job's progress, the review page, search."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from inkwell.accounts import authenticate
from inkwell.models import Job, Page, Upload, User, WorkerHeartbeat, utcnow
from inkwell.queue import QUEUE_LINES, QUEUE_PAGES
from inkwell.results import job_out, load_job
from inkwell.review import search_lines, similar_pages
from inkwell.stall import stalled_queues
from inkwell.storage import page_image as stored_page_image
from inkwell.storage import upload_bytes
from inkwell.throttle import ThrottlePolicy, clear_failures, locked_for, record_failure
from webui.auth import Reviewer, end_sessions, start_session
from webui.state import celery_app, database, settings
from webui.uploads import Submission, accept_upload, submitted_files

views = Blueprint("views", __name__)

BROWSER_IMAGE_TYPES = {"image/png", "image/jpeg", "image/webp"}


def _safe_next(target: str | None) -> str:
    """Only same-site paths: ``next`` must never send a reviewer to another site after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("views.index")


@views.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("views.index"))
    with database().session() as db:
        no_users = db.scalar(select(func.count()).select_from(User)) == 0
    if request.method == "GET":
        return render_template("sign_in.html", error=None, no_users=no_users)
    username, address = request.form.get("username", ""), request.remote_addr or "unknown"
    policy = throttle_policy(settings())
    with database().session() as db:
        wait = locked_for(db, username, address, policy)
    if wait > 0:
        current_app.logger.warning(
            "sign-in refused for %r from %s: locked for %.0f s after repeated failures", username[:64], address, wait
        )
        error = f"Too many failed sign-ins: try again in {math.ceil(wait / 60)} minute(s)."
        return (
            render_template("sign_in.html", error=error, no_users=no_users),
            429,
            {"Retry-After": str(math.ceil(wait))},
        )
    with database().session() as db:
        user = authenticate(db, username, request.form.get("password", ""))
        if user is None:
            record_failure(db, username, address, policy)
        else:
            clear_failures(db, username)
            reviewer, epoch = Reviewer(user.id, user.username), user.session_epoch
    if user is None:
        error = "Wrong username or password, or the account is disabled."
        return render_template("sign_in.html", error=error, no_users=no_users), 401
    start_session(reviewer, epoch)
    return redirect(_safe_next(request.args.get("next")))


@views.post("/sign-out")
@login_required
def sign_out() -> Response:
    end_sessions(current_user.id)
    flash("You are signed out.")
    return redirect(url_for("views.sign_in"))


def throttle_policy(config) -> ThrottlePolicy:
    return ThrottlePolicy(
        config.sign_in_max_failures, config.sign_in_max_failures_per_address, config.sign_in_lockout_seconds
    )


@views.get("/")
@login_required
def index() -> str:
    return render_template("index.html", limits=settings(), filters=request.args)


@views.post("/jobs")
@login_required
def upload() -> Response:
    accepted = accept_upload(
        Submission(
            submitted_files(request.files),
            source="web",
            layout=request.form.get("layout", "page"),
            user_id=current_user.id,
        )
    )
    return redirect(url_for("views.job", job_id=accepted.job_id), code=303)


@views.get("/jobs/<job_id>")
@login_required
def job(job_id: str) -> str:
    with database().session() as db:
        found = db.get(Job, job_id)
        if found is None:
            abort(404, description=f"There is no job {job_id}.")
    return render_template("job.html", job=found)


@views.get("/jobs/<job_id>/pages/<row_id:number>/review")
@login_required
def review(job_id: str, number: int) -> str:
    with database().session() as db:
        loaded = load_job(db, job_id)
        if loaded is None or not 1 <= number <= len(loaded.pages):
            abort(404, description="No such page.")
        body = job_out(loaded)
    page = body.pages[number - 1]
    return render_template("review.html", job=body, page=page, threshold=settings().review_threshold)


@views.get("/jobs/<job_id>/pages/<row_id:number>/image")
@login_required
def page_image(job_id: str, number: int) -> Response:
    """The page as the workers see it (upright, PDFs rasterised), or the upload itself before that."""
    with database().session() as db:
        page = db.scalar(select(Page).where(Page.job_id == job_id, Page.number == number))
        if page is None:
            abort(404, description="No such page.")
        prepared = stored_page_image(db, page.id)
        if prepared is not None:
            data, media_type = prepared.data, prepared.media_type
        else:
            upload = db.get(Upload, page.upload_id)
            if upload.media_type not in BROWSER_IMAGE_TYPES:
                abort(404, description="The page image is not ready yet.")
            data, media_type = upload_bytes(db, upload.id), upload.media_type
    response = Response(data, mimetype=media_type)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@views.get("/search")
@login_required
def search() -> str:
    text = request.args.get("q", "").strip()
    with database().session() as db:
        hits = search_lines(db, text) if text else []
    return render_template("search.html", query=text, hits=hits)


@views.get("/pages/<row_id:page_id>/similar")
@login_required
def similar(page_id: int) -> str:
    with database().session() as db:
        page = db.get(Page, page_id)
        if page is None:
            abort(404, description="No such page.")
        found = similar_pages(db, page)
        origin = {"job_id": page.job_id, "number": page.number}
    return render_template("similar.html", origin=origin, similar=found)


@views.get("/healthz")
def healthz() -> Response:
    """The web process is up (it checks nothing else)."""
    return Response('{"status": "ok"}', mimetype="application/json")


HEARTBEAT_FRESH_SECONDS = 60


@views.get("/readyz")
def readyz() -> Response:
    """Ready to work: the database and the broker answer, a worker of each queue was seen lately,
    and no queue has work waiting with nothing moving (see inkwell.stall)."""
    checks: dict[str, str] = {}
    try:
        with database().session() as db:
            db.execute(select(1))
            cutoff = utcnow() - timedelta(seconds=HEARTBEAT_FRESH_SECONDS)
            queues = {
                q
                for row in db.scalars(select(WorkerHeartbeat.queues).where(WorkerHeartbeat.seen_at >= cutoff))
                for q in row.split(",")
            }
            stalled = stalled_queues(db, settings().stall_after_seconds)
        checks["database"] = "ok"
        for queue in (QUEUE_PAGES, QUEUE_LINES):
            checks[f"worker:{queue}"] = (
                "ok" if queue in queues else f"no worker seen in the last {HEARTBEAT_FRESH_SECONDS} s"
            )
            if queue in stalled:
                checks[f"progress:{queue}"] = f"stalled: {stalled[queue]}"
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unreachable: {type(error).__name__}"
    try:
        with celery_app().connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
        checks["broker"] = "ok"
    except Exception as error:  # noqa: BLE001
        checks["broker"] = f"unreachable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return Response(
        json.dumps({"status": "ready" if ready else "not ready", "checks": checks}),
        status=200 if ready else 503,
        mimetype="application/json",
    )
