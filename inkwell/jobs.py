"""Creating jobs from accepted uploads, and advancing a job's status from its pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inkwell.models import Job, JobStatus, Line, Page, PageStatus, utcnow
from inkwell.storage import add_upload


@dataclass(frozen=True)
class AcceptedFile:
    """An upload that passed the checks, ready to be stored; ``page_sizes`` in pixels, one per page."""

    filename: str
    media_type: str
    data: bytes
    page_sizes: tuple[tuple[int | None, int | None], ...] = ((None, None),)


def create_job(session: Session, files: list[AcceptedFile], source: str, layout: str = "page") -> Job:
    """Add a queued job: each file stored once, one page per page of each file (caller's transaction)."""
    job = Job(source=source, status=JobStatus.QUEUED, layout=layout, page_count=sum(len(f.page_sizes) for f in files))
    session.add(job)
    number = 0
    for file_number, accepted in enumerate(files, start=1):
        upload = add_upload(
            session, job, file_number, accepted.filename, accepted.media_type, accepted.data, len(accepted.page_sizes)
        )
        for index, (width, height) in enumerate(accepted.page_sizes):
            number += 1
            job.pages.append(
                Page(
                    number=number,
                    upload=upload,
                    source_index=index,
                    width=width,
                    height=height,
                    status=PageStatus.QUEUED,
                )
            )
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
    job.line_count = (
        session.scalar(select(func.coalesce(func.sum(Page.line_count), 0)).where(Page.job_id == job.id)) or 0
    )
    job.lines_done = (
        session.scalar(
            select(func.count(Line.id))
            .join(Page, Line.page_id == Page.id)
            .where(Page.job_id == job.id, Line.text.is_not(None))
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
