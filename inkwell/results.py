"""Reading a job and its results out of the database, in the API's shapes and as plain text."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from inkwell.fields import label_text, pair_fields
from inkwell.models import Job, Line, Page, PageStatus
from inkwell.schemas import FieldOut, JobOut, LineOut, PageOut, Progress, TokenOut


def load_job(session: Session, job_id: str) -> Job | None:
    """The job with its pages and lines (two extra queries, no per-page queries)."""
    return session.scalar(
        select(Job)
        .where(Job.id == job_id)
        .options(
            selectinload(Job.pages).selectinload(Page.lines),
            selectinload(Job.pages).selectinload(Page.upload),
            selectinload(Job.uploads),
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
        text_type=line.text_type,
        text_type_confidence=line.text_type_confidence,
        tokens=[TokenOut(**token) for token in line.tokens] if line.tokens is not None else None,
        reviewed=line.reviewed_at is not None,
    )


def page_fields(page: Page) -> list[FieldOut]:
    """The page's fields: its printed labels paired with their handwritten values (inkwell/fields.py).

    Computed from the stored lines each time, so a value a reviewer corrects is the field's value.
    """
    lines = list(page.lines)
    boxes4 = [(float(x0), float(y0), float(x1), float(y1)) for x0, y0, x1, y1 in (line.bbox for line in lines)]
    pairs = pair_fields(boxes4, [line.text_type for line in lines], [line.text_type_confidence for line in lines])
    fields = []
    for pair in pairs:
        key, values = lines[pair.key], [lines[i] for i in pair.values]
        boxes = [key.bbox] + [line.bbox for line in values]
        confidences: list[float | None] = [
            1.0 if line.corrected_text is not None else line.confidence for line in values
        ]
        known = [c for c in confidences if c is not None]
        fields.append(
            FieldOut(
                page=page.number,
                key=label_text(key.final_text),
                value=" ".join(line.final_text for line in values),
                confidence=None if len(known) < len(confidences) else round(min(known), 4),
                key_line_id=key.id,
                value_line_ids=[line.id for line in values],
                bbox=[
                    min(b[0] for b in boxes),
                    min(b[1] for b in boxes),
                    max(b[2] for b in boxes),
                    max(b[3] for b in boxes),
                ],
                corrected=any(line.corrected_text is not None for line in values),
            )
        )
    return fields  # in the labels' reading order


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
        fields=page_fields(page) if done else [],
    )


def progress_of(job: Job) -> Progress:
    return Progress(
        pages_total=job.page_count,
        pages_done=job.pages_done,
        pages_failed=job.pages_failed,
        lines_total=job.line_count,
        lines_done=job.lines_done,
    )


def job_out(job: Job) -> JobOut:
    pages = [page_out(page) for page in job.pages]
    return JobOut(
        id=job.id,
        status=job.status.value,
        created_at=job.created_at,
        finished_at=job.finished_at,
        model=job.model,
        error=job.error,
        reviewed=job.reviewed_at is not None,
        progress=progress_of(job),
        pages=pages,
        fields=[field for page in pages for field in page.fields],
    )


def job_text(job: Job) -> str:
    """Plain-text export: each read page's text, pages separated by a form feed."""
    return "\n\f\n".join(page_text(page) for page in job.pages if page.status == PageStatus.SUCCEEDED) + "\n"
