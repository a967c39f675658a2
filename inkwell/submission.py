"""Accepting a submission: check everything, then store the job, then send its first pages.

The one service behind the web form and ``POST /api/v1/jobs``; it knows nothing of HTTP.

A submission either creates a whole job or nothing. With an ``Idempotency-Key``, a retried
submission (same caller, same key, same content) finds the job the first one created instead
of making a second; the same key with other content is refused.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from inkwell.callbacks import AddressPolicy, CallbackRefused, check_callback_url
from inkwell.config import Settings
from inkwell.db import Database
from inkwell.errors import ErrorCode, Refused
from inkwell.intake import check_upload
from inkwell.jobs import AcceptedFile, create_job
from inkwell.models import CallbackState, Job
from inkwell.scheduling import send_next_pages

log = logging.getLogger(__name__)

LAYOUTS = ("page", "line")
MAX_IDEMPOTENCY_KEY = 200


class SubmittedFile(Protocol):
    """One file of a submission: a name as the client gave it and its bytes (a multipart part fits)."""

    filename: str | None
    stream: BinaryIO


@dataclass(frozen=True)
class Submission:
    """Who submits what, and how."""

    files: list[SubmittedFile]
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


def _validate(submission: Submission, config: Settings) -> None:
    if submission.layout not in LAYOUTS:
        raise Refused(
            ErrorCode.INVALID_LAYOUT,
            "layout must be 'page' (find the lines of each page) or 'line' (each file is one line), not "
            f"{submission.layout!r}",
        )
    key = submission.idempotency_key
    if key is not None and (not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable()):
        raise Refused(
            ErrorCode.INVALID_IDEMPOTENCY_KEY,
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters",
        )
    if submission.callback_url is not None:
        if submission.token_id is None:
            raise Refused(
                ErrorCode.INVALID_CALLBACK_URL, "callbacks are signed with an API token's secret: submit with a token"
            )
        try:
            check_callback_url(submission.callback_url, AddressPolicy.from_settings(config))
        except CallbackRefused as error:
            raise Refused(ErrorCode.INVALID_CALLBACK_URL, str(error)) from None
    if not submission.files:
        raise Refused(ErrorCode.MISSING_FILE, "no file was uploaded: send one or more files in the 'files' field")
    if len(submission.files) > config.max_files_per_job:
        raise Refused(
            ErrorCode.TOO_MANY_FILES,
            f"{len(submission.files)} files is more than the limit of {config.max_files_per_job} per job",
        )


def _fingerprint(submission: Submission, contents: list[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256(f"{submission.layout}\n{submission.callback_url or ''}\n".encode())
    for name, data in contents:
        digest.update(f"{name}\n{hashlib.sha256(data).hexdigest()}\n".encode())
    return digest.hexdigest()


def _replay(db: Database, scoped_key: str, fingerprint: str) -> Accepted | None:
    with db.session() as session:
        job = session.scalar(select(Job).where(Job.idempotency_key == scoped_key))
        if job is None:
            return None
        if job.request_fingerprint != fingerprint:
            raise Refused(
                ErrorCode.IDEMPOTENCY_KEY_REUSED, "this Idempotency-Key was already used for a different submission"
            )
        return Accepted(job.id, job.page_count, replayed=True)


def accept_submission(db: Database, config: Settings, sender: Celery, submission: Submission) -> Accepted:
    """Check every file, store the job and its pages in one transaction, then send its first pages.

    Used by the web form and the API alike; ``sender`` is the Celery app messages go through
    (inkwell/queue.py). Raises :class:`~inkwell.errors.Refused` and stores nothing when refused.
    """
    _validate(submission, config)
    contents = [
        (upload.filename or "upload", upload.stream.read(config.max_file_bytes + 1)) for upload in submission.files
    ]
    fingerprint = _fingerprint(submission, contents)
    scoped_key = f"{submission.caller}:{submission.idempotency_key}" if submission.idempotency_key else None
    if scoped_key and (earlier := _replay(db, scoped_key, fingerprint)):
        return earlier
    accepted: list[AcceptedFile] = []
    limits = config.upload_limits()
    pages = 0
    for name, data in contents:
        checked = check_upload(data, name, limits)
        pages += checked.page_count
        if pages > config.max_pages_per_job:
            raise Refused(
                ErrorCode.TOO_MANY_PAGES,
                f"the files hold more than the limit of {config.max_pages_per_job} pages per job",
            )
        accepted.append(AcceptedFile(name, checked.media_type, data, tuple(checked.page_sizes)))
    try:
        with db.session() as session:
            job = create_job(session, accepted, submission.source, submission.layout)
            job.user_id, job.token_id = submission.user_id, submission.token_id
            job.idempotency_key, job.request_fingerprint = scoped_key, fingerprint
            if submission.callback_url:
                job.callback_url, job.callback_state = submission.callback_url, CallbackState.PENDING.value
            session.flush()
            job_id = job.id
            page_ids = [page.id for page in job.pages]
    except IntegrityError:
        # the same key raced in from a concurrent retry, which won: answer with its job
        if scoped_key and (earlier := _replay(db, scoped_key, fingerprint)):
            return earlier
        raise
    # Only now, with the rows committed, may a worker see the ids; a job's first few pages go on the
    # queue, the rest follow one by one as those are done (fair scheduling, inkwell/scheduling.py).
    if not send_next_pages(db, sender, job_id, config.pages_in_flight_per_job):
        log.warning("job %s stored but not queued (broker unreachable); the sweeper will send it", job_id)
    return Accepted(job_id, len(page_ids), replayed=False)
