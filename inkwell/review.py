"""Reviewing results: corrections with history, accepting lines, marking pages reviewed,
what still needs a look, text search and similar pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from inkwell.arrays import unpack_array
from inkwell.models import Job, JobStatus, Line, LineEdit, Page, PageStatus, Upload, utcnow
from inkwell.schemas import SearchHitOut, SimilarPageOut

MAX_LINE_LENGTH = 2000


class ReviewError(ValueError):
    """A review action that cannot be done (the message says why)."""


def needs_review_clause(threshold: float):
    """SQL condition: a read line below the confidence threshold that no one has looked at yet."""
    return and_(
        Line.text.is_not(None), Line.reviewed_at.is_(None), or_(Line.confidence.is_(None), Line.confidence < threshold)
    )


def correct_line(session: Session, line: Line, text: str, author: str) -> Line:
    """Set the reviewer's text for ``line`` and record the edit (no edit is recorded when nothing changes)."""
    text = " ".join(text.split())  # one line of text: no line breaks, no stray spaces
    if len(text) > MAX_LINE_LENGTH:
        raise ReviewError(f"a line has at most {MAX_LINE_LENGTH} characters")
    if line.text is None:
        raise ReviewError("the line has not been read yet")
    now = utcnow()
    if text != line.final_text:
        session.add(LineEdit(line_id=line.id, text=text, previous=line.final_text, author=author, created_at=now))
        line.corrected_text = None if text == line.text else text
        line.corrected_by, line.corrected_at = (None, None) if line.corrected_text is None else (author, now)
    line.reviewed_at, line.reviewed_by = now, author
    _unmark_page(session, line.page_id)
    return line


def accept_line(session: Session, line: Line, author: str) -> Line:
    """The reviewer checked the line and it is right as it stands."""
    if line.text is None:
        raise ReviewError("the line has not been read yet")
    line.reviewed_at, line.reviewed_by = utcnow(), author
    return line


def _unmark_page(session: Session, page_id: int) -> None:
    page = session.get(Page, page_id)
    if page is not None and page.reviewed_at is not None:
        # the page changed after it was marked reviewed: it is reviewed again once re-marked
        page.reviewed_at = page.reviewed_by = None
        job = session.get(Job, page.job_id)
        job.reviewed_at = None


def mark_page_reviewed(session: Session, page: Page, author: str) -> Page:
    """Mark a read page reviewed (its lines count as checked); the job is reviewed once all its pages are."""
    if page.status != PageStatus.SUCCEEDED:
        raise ReviewError(f"page {page.number} is {page.status.value}, not read: there is nothing to review")
    now = utcnow()
    page.reviewed_at, page.reviewed_by = now, author
    for line in page.lines:
        if line.reviewed_at is None:
            line.reviewed_at, line.reviewed_by = now, author
    job = session.get(Job, page.job_id)
    pending = session.scalar(
        select(func.count())
        .select_from(Page)
        .where(
            Page.job_id == job.id, Page.status == PageStatus.SUCCEEDED, Page.reviewed_at.is_(None), Page.id != page.id
        )
    )
    if job.status.finished and not pending:
        job.reviewed_at = now
    return page


def history(session: Session, line_id: int) -> list[LineEdit]:
    return list(
        session.scalars(select(LineEdit).where(LineEdit.line_id == line_id).order_by(LineEdit.created_at, LineEdit.id))
    )


def needs_review_counts(session: Session, job_ids: list[str], threshold: float) -> dict[str, int]:
    """Lines needing review, per job."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(Page.job_id, func.count(Line.id))
        .join(Line, Line.page_id == Page.id)
        .where(Page.job_id.in_(job_ids), needs_review_clause(threshold))
        .group_by(Page.job_id)
    )
    return dict(rows.all())


@dataclass(frozen=True)
class JobFilter:
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    needs_review: bool = False
    token_id: int | None = None  # only this token's jobs
    limit: int = 50


def list_jobs(session: Session, query: JobFilter, threshold: float) -> list[Job]:
    statement = select(Job).order_by(Job.created_at.desc()).limit(query.limit)
    if query.status:
        statement = statement.where(Job.status == JobStatus(query.status))
    if query.since:
        statement = statement.where(Job.created_at >= query.since)
    if query.until:
        statement = statement.where(Job.created_at < query.until)
    if query.token_id is not None:
        statement = statement.where(Job.token_id == query.token_id)
    if query.needs_review:
        pending = select(Page.job_id).join(Line, Line.page_id == Page.id).where(needs_review_clause(threshold))
        statement = statement.where(Job.id.in_(pending))
    return list(session.scalars(statement))


def search_lines(session: Session, text: str, token_id: int | None = None, limit: int = 100) -> list[SearchHitOut]:
    """Lines whose model text or corrected text contains every word of ``text`` (case-insensitive)."""
    words = [w for w in text.split() if w][:8]
    if not words:
        return []
    statement = (
        select(Line, Page.job_id, Page.number, Upload.filename)
        .join(Page, Line.page_id == Page.id)
        .join(Job, Page.job_id == Job.id)
        .join(Upload, Page.upload_id == Upload.id)
        .order_by(Job.created_at.desc(), Page.number, Line.number)
        .limit(limit)
    )
    for word in words:
        pattern = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # plain columns (not coalesce) so PostgreSQL can use the trigram indexes of revision 0005
        statement = statement.where(
            or_(Line.text.ilike(pattern, escape="\\"), Line.corrected_text.ilike(pattern, escape="\\"))
        )
    if token_id is not None:
        statement = statement.where(Job.token_id == token_id)
    return [
        SearchHitOut(
            job_id=job_id,
            page_number=page_number,
            line_id=line.id,
            line_number=line.number,
            text=line.final_text,
            corrected=line.corrected_text is not None,
            filename=filename,
        )
        for line, job_id, page_number, filename in session.execute(statement)
    ]


def similar_pages(session: Session, page: Page, token_id: int | None = None, limit: int = 10) -> list[SimilarPageOut]:
    """Other read pages ranked by cosine similarity of their embeddings (mean of the lines' ViT embeddings).

    Only embeddings of the same model and encoder layer are compared: vectors from another model,
    or from another depth of the same one, live in other spaces.
    """
    if page.embedding is None:
        return []
    target = unpack_array(page.embedding).astype(np.float32)
    layer_matches = (
        Page.embedding_layer.is_(None) if page.embedding_layer is None else Page.embedding_layer == page.embedding_layer
    )
    model_matches = (
        Page.embedding_model.is_(None) if page.embedding_model is None else Page.embedding_model == page.embedding_model
    )
    statement = (
        select(Page.id, Page.job_id, Page.number, Upload.filename, Page.embedding)
        .join(Upload, Page.upload_id == Upload.id)
        .join(Job, Page.job_id == Job.id)
        .where(Page.embedding.is_not(None), Page.id != page.id, layer_matches, model_matches)
    )
    if token_id is not None:
        statement = statement.where(Job.token_id == token_id)
    # A size check as well: rows written before models were recorded.
    candidates = [(row, unpack_array(row.embedding).astype(np.float32)) for row in session.execute(statement)]
    candidates = [(row, vector) for row, vector in candidates if vector.shape == target.shape]
    if not candidates:
        return []
    rows = [row for row, _ in candidates]
    matrix = np.stack([vector for _, vector in candidates])
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(target)), 1e-12)
    scores = matrix @ target / np.maximum(norms, 1e-12)
    best = np.argsort(-scores)[:limit]
    return [
        SimilarPageOut(
            page_id=rows[i].id,
            job_id=rows[i].job_id,
            page_number=rows[i].number,
            filename=rows[i].filename,
            similarity=float(scores[i]),
        )
        for i in best
    ]
