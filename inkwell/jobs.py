"""Creating jobs from accepted uploads, and advancing a job's status from its pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inkwell.models import Job, JobStatus, Line, Page, PageStatus, utcnow
from inkwell.storage import UPLOAD, put_page_file


@dataclass(frozen=True)
class AcceptedFile:
    """An upload that passed the checks, ready to be stored."""

    filename: str
    media_type: str
    data: bytes
    width: int | None = None
    height: int | None = None


def create_job(session: Session, files: list[AcceptedFile], source: str) -> Job:
    """Add a queued job with one page per file and the files' bytes, in the caller's transaction."""
    job = Job(source=source, status=JobStatus.QUEUED, page_count=len(files))
    session.add(job)
    for number, accepted in enumerate(files, start=1):
        page = Page(
            number=number, filename=accepted.filename[:255], media_type=accepted.media_type,
            width=accepted.width, height=accepted.height, status=PageStatus.QUEUED,
        )
        job.pages.append(page)
        session.flush()
        put_page_file(session, page, UPLOAD, accepted.data, accepted.media_type)
    session.flush()
    return job


def refresh_job(session: Session, job: Job) -> Job:
    """Recount a job's progress from its pages and lines, and set its status accordingly.

    Counting (instead of incrementing) makes the update idempotent: a redelivered task that
    finishes a page a second time leaves the same numbers.
    """
    counts = dict(
        session.execute(select(Page.status, func.count()).where(Page.job_id == job.id).group_by(Page.status)).all()
    )
    job.pages_done = counts.get(PageStatus.SUCCEEDED, 0)
    job.pages_failed = counts.get(PageStatus.FAILED, 0)
    job.line_count = session.scalar(select(func.coalesce(func.sum(Page.line_count), 0)).where(Page.job_id == job.id)) or 0
    job.lines_done = (
        session.scalar(
            select(func.count(Line.id)).join(Page, Line.page_id == Page.id).where(Page.job_id == job.id, Line.text.is_not(None))
        )
        or 0
    )
    finished = job.pages_done + job.pages_failed
    if finished >= job.page_count:
        if job.pages_failed == 0:
            job.status = JobStatus.SUCCEEDED
        elif job.pages_done == 0:
            job.status = JobStatus.FAILED
            job.error = job.error or "no page could be read"
        else:
            job.status = JobStatus.PARTIAL
            job.error = f"{job.pages_failed} of {job.page_count} pages could not be read"
        job.finished_at = job.finished_at or utcnow()
    elif job.status == JobStatus.QUEUED and (finished or counts.get(PageStatus.PREPARED, 0)):
        job.status = JobStatus.PROCESSING
    return job


def mark_job_started(job: Job) -> None:
    """A worker picked up one of the job's pages: the job is processing."""
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.PROCESSING
        job.started_at = job.started_at or utcnow()
