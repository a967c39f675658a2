"""Turning an upload request into a stored, queued job: check everything, then store, then enqueue.

A submission either creates a whole job or nothing. With an ``Idempotency-Key``, a retried
submission (same caller, same key, same content) finds the job the first one created instead
of making a second; the same key with other content is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from inkwell.callbacks import AddressPolicy, CallbackRefused, check_callback_url
from inkwell.intake import UploadError, check_upload
from inkwell.jobs import AcceptedFile, create_job
from inkwell.models import Job
from inkwell.scheduling import send_next_pages
from webui.state import celery_app, database, settings

UPLOAD_FIELDS = ("files", "file")
LAYOUTS = ("page", "line")
MAX_IDEMPOTENCY_KEY = 200


def submitted_files(files: dict) -> list[FileStorage]:
    """The uploaded files of a multipart form, under ``files`` (repeated) or ``file``."""
    found: list[FileStorage] = []
    for field in UPLOAD_FIELDS:
        found.extend(f for f in files.getlist(field) if f is not None and (f.filename or f.content_length))
    return found


@dataclass(frozen=True)
class Submission:
    """Who submits what, and how."""

    files: list[FileStorage]
    source: str
    layout: str = "page"
    user_id: int | None = None
    token_id: int | None = None
    idempotency_key: str | None = None  # as sent by the client
    callback_url: str | None = None

    @property
    def caller(self) -> str:
        return f"token:{self.token_id}" if self.token_id is not None else f"user:{self.user_id}"


@dataclass(frozen=True)
class Accepted:
    job_id: str
    pages: int
    replayed: bool  # an earlier submission with the same Idempotency-Key made this job


def _validate(submission: Submission) -> None:
    config = settings()
    if submission.layout not in LAYOUTS:
        raise UploadError(
            400,
            "invalid_layout",
            f"layout must be 'page' (find the lines of each page) or 'line' (each file is one line), not {submission.layout!r}",
        )
    key = submission.idempotency_key
    if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise UploadError(
            400, "invalid_idempotency_key", f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"
        )
    if submission.callback_url is not None:
        if submission.token_id is None:
            raise UploadError(
                400, "invalid_callback_url", "callbacks are signed with an API token's secret: submit with a token"
            )
        try:
            check_callback_url(submission.callback_url, AddressPolicy.from_settings(config))
        except CallbackRefused as error:
            raise UploadError(400, "invalid_callback_url", str(error)) from None
    if not submission.files:
        raise UploadError(400, "missing_file", "no file was uploaded: send one or more files in the 'files' field")
    if len(submission.files) > config.max_files_per_job:
        raise UploadError(
            413,
            "too_many_files",
            f"{len(submission.files)} files is more than the limit of {config.max_files_per_job} per job",
        )


def _fingerprint(submission: Submission, contents: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256(f"{submission.layout}\n{submission.callback_url or ''}\n".encode())
    for name, data in contents:
        digest.update(f"{name}\n{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def _replay(scoped_key: str, fingerprint: str) -> Accepted | None:
    with database().session() as session:
        job = session.scalar(select(Job).where(Job.idempotency_key == scoped_key))
        if job is None:
            return None
        if job.request_fingerprint != fingerprint:
            raise UploadError(
                422, "idempotency_key_reused", "this Idempotency-Key was already used for a different submission"
            )
        return Accepted(job.id, job.page_count, replayed=True)


def accept_upload(submission: Submission) -> Accepted:
    """Check every file, store the job and its pages in one transaction, then enqueue its pages."""
    config = settings()
    _validate(submission)
    contents = [
        (upload.filename or "upload", upload.stream.read(config.max_file_bytes + 1)) for upload in submission.files
    ]
    fingerprint = _fingerprint(submission, contents)
    scoped_key = f"{submission.caller}:{submission.idempotency_key}" if submission.idempotency_key else None
    if scoped_key and (earlier := _replay(scoped_key, fingerprint)):
        return earlier
    accepted: list[AcceptedFile] = []
    limits = config.upload_limits()
    pages = 0
    for name, data in contents:
        checked = check_upload(data, name, limits)
        pages += checked.page_count
        if pages > config.max_pages_per_job:
            raise UploadError(
                413, "too_many_pages", f"the files hold more than the limit of {config.max_pages_per_job} pages per job"
            )
        accepted.append(AcceptedFile(name, checked.media_type, data, tuple(checked.page_sizes)))
    try:
        with database().session() as session:
            job = create_job(session, accepted, submission.source, submission.layout)
            job.user_id, job.token_id = submission.user_id, submission.token_id
            job.idempotency_key, job.request_fingerprint = scoped_key, fingerprint
            if submission.callback_url:
                job.callback_url, job.callback_state = submission.callback_url, "pending"
            session.flush()
            job_id = job.id
            page_ids = [page.id for page in job.pages]
    except IntegrityError:
        # the same key raced in from a concurrent retry, which won: answer with its job
        if scoped_key and (earlier := _replay(scoped_key, fingerprint)):
            return earlier
        raise
    # Only now, with the rows committed, may a worker see the ids; a job's first few pages go on the
    # queue, the rest follow one by one as those are done (fair scheduling, inkwell/scheduling.py).
    if not send_next_pages(database(), celery_app(), job_id, config.pages_in_flight_per_job):
        current_app.logger.warning(
            "job %s stored but not queued (broker unreachable); the sweeper will send it", job_id
        )
    return Accepted(job_id, len(page_ids), replayed=False)
