"""Turning an upload request into a stored, queued job: check everything, then store, then enqueue."""

from __future__ import annotations

from flask import current_app
from werkzeug.datastructures import FileStorage

from inkwell.intake import UploadError, check_upload
from inkwell.jobs import AcceptedFile, create_job
from inkwell.queue import enqueue_pages
from webui.state import celery_app, database, settings

UPLOAD_FIELDS = ("files", "file")


def submitted_files(files: dict) -> list[FileStorage]:
    """The uploaded files of a multipart form, under ``files`` (repeated) or ``file``."""
    found: list[FileStorage] = []
    for field in UPLOAD_FIELDS:
        found.extend(f for f in files.getlist(field) if f is not None and (f.filename or f.content_length))
    return found


LAYOUTS = ("page", "line")


def accept_upload(
    files: list[FileStorage], source: str, layout: str = "page", user_id: int | None = None, token_id: int | None = None
) -> tuple[str, int]:
    """Check every file, store the job and its pages in one transaction, then enqueue its pages.

    Raises :class:`UploadError` before anything is written if any file is refused, so a
    request either creates a whole job or nothing. Returns (job id, number of pages).
    """
    config = settings()
    if layout not in LAYOUTS:
        raise UploadError(400, "invalid_layout", f"layout must be 'page' (find the lines of each page) or 'line' (each file is one line), not {layout!r}")
    if not files:
        raise UploadError(400, "missing_file", "no file was uploaded: send one or more files in the 'files' field")
    if len(files) > config.max_files_per_job:
        raise UploadError(413, "too_many_files", f"{len(files)} files is more than the limit of {config.max_files_per_job} per job")
    accepted: list[AcceptedFile] = []
    limits = config.upload_limits()
    pages = 0
    for upload in files:
        data = upload.stream.read(config.max_file_bytes + 1)
        name = upload.filename or "upload"
        checked = check_upload(data, name, limits)
        pages += checked.page_count
        if pages > config.max_pages_per_job:
            raise UploadError(413, "too_many_pages", f"the files hold more than the limit of {config.max_pages_per_job} pages per job")
        accepted.append(AcceptedFile(name, checked.media_type, data, tuple(checked.page_sizes)))
    with database().session() as session:
        job = create_job(session, accepted, source, layout)
        job.user_id, job.token_id = user_id, token_id
        job_id = job.id
        page_ids = [page.id for page in job.pages]
    # Only now, with the rows committed, may a worker see the ids.
    if not enqueue_pages(celery_app(), page_ids):
        current_app.logger.warning("job %s stored but not yet queued (broker unreachable)", job_id)
    return job_id, len(page_ids)
