"""Reading a job and its results out of the database, in the API's shapes and as plain text."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from inkwell.models import Job, Line, Page, PageStatus
from inkwell.schemas import JobOut, LineOut, PageOut, Progress, TokenOut


def load_job(session: Session, job_id: str) -> Job | None:
    """The job with its pages and lines (two extra queries, no per-page queries)."""
    return session.scalar(
        select(Job).where(Job.id == job_id).options(
            selectinload(Job.pages).selectinload(Page.lines), selectinload(Job.pages).selectinload(Page.upload), selectinload(Job.uploads)
        )
    )


def line_out(line: Line) -> LineOut:
    return LineOut(
        id=line.id,
        number=line.number,
        text=line.final_text,
        model_text=line.text,
        corrected=line.corrected_text is not None,
        confidence=line.confidence,
        bbox=list(line.bbox),
        polygon=line.polygon,
        detection_confidence=line.detection_confidence,
        tokens=[TokenOut(**token) for token in line.tokens] if line.tokens is not None else None,
        reviewed=line.reviewed_at is not None,
    )


def page_text(page: Page) -> str:
    """The page's final text, one line per text line, in reading order."""
    return "\n".join(line.final_text for line in page.lines)


def page_out(page: Page) -> PageOut:
    done = page.status == PageStatus.SUCCEEDED
    return PageOut(
        id=page.id,
        number=page.number,
        filename=page.upload.filename,
        source_page=page.source_index + 1,
        status=page.status.value,
        error=page.error,
        width=page.width,
        height=page.height,
        text=page_text(page) if done else None,
        reviewed=page.reviewed_at is not None,
        lines=[line_out(line) for line in page.lines] if done else [],
    )


def progress_of(job: Job) -> Progress:
    return Progress(
        pages_total=job.page_count, pages_done=job.pages_done, pages_failed=job.pages_failed,
        lines_total=job.line_count, lines_done=job.lines_done,
    )


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        status=job.status.value,
        created_at=job.created_at,
        finished_at=job.finished_at,
        model=job.model,
        error=job.error,
        reviewed=job.reviewed_at is not None,
        progress=progress_of(job),
        pages=[page_out(page) for page in job.pages],
    )


def job_text(job: Job) -> str:
    """Plain-text export: each read page's text, pages separated by a form feed."""
    return "\n\f\n".join(page_text(page) for page in job.pages if page.status == PageStatus.SUCCEEDED) + "\n"
