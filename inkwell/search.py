"""Search that forgives misreadings: lines whose text (as read or as corrected) resembles the query,
best first. "gonzalez" finds a line read as "GONZALE2".

PostgreSQL ranks with pg_trgm's ``word_similarity`` (the query against the most similar stretch of
the line's text), and its ``<%`` operator lets the trigram indexes of revision 0005 find the
candidates; a line matches when it reaches ``pg_trgm.word_similarity_threshold`` (0.6 by default).
SQLite, and PostgreSQL without pg_trgm, rank with rapidfuzz's ``partial_ratio`` (the query against
the best-matching substring) in the process, keeping lines at or above ``FUZZY_CUTOFF``.
"""

from __future__ import annotations

from rapidfuzz import fuzz
from sqlalchemy import Select, func, literal, or_, select, text
from sqlalchemy.orm import Session

from inkwell.models import Job, Line, Page, Upload
from inkwell.schemas import SearchHitOut

FUZZY_CUTOFF = 0.7  # rapidfuzz: a query of 8 letters with one misread letter scores 0.875, with two 0.75
MAX_QUERY = 200


def _scope(statement: Select, token_id: int | None) -> Select:
    statement = statement.join(Page, Line.page_id == Page.id).join(Job, Page.job_id == Job.id)
    return statement.where(Job.token_id == token_id) if token_id is not None else statement


def _has_trigrams(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return False
    return session.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")).first() is not None


def _trigram_scores(session: Session, query: str, token_id: int | None, limit: int) -> list[tuple[int, float]]:
    score = func.greatest(
        func.coalesce(func.word_similarity(query, Line.text), 0.0),
        func.coalesce(func.word_similarity(query, Line.corrected_text), 0.0),
    )
    # one operator per indexed column (not on coalesce): each can use its own trigram index
    matches = or_(literal(query).op("<%")(Line.text), literal(query).op("<%")(Line.corrected_text))
    statement = _scope(select(Line.id, score.label("score")), token_id).where(matches)
    statement = statement.order_by(score.desc(), Job.created_at.desc(), Page.number, Line.number).limit(limit)
    return [(line_id, float(value)) for line_id, value in session.execute(statement)]


def _fuzzy_scores(session: Session, query: str, token_id: int | None, limit: int) -> list[tuple[int, float]]:
    wanted = query.lower()  # only the case: rapidfuzz's default processor would also drop %, / and the like
    statement = _scope(
        select(Line.id, Line.text, Line.corrected_text, Job.created_at, Page.number, Line.number), token_id
    )
    scored = []
    for line_id, read, corrected, created, page_number, line_number in session.execute(
        statement.where(Line.text.is_not(None))
    ):
        best = max(fuzz.partial_ratio(wanted, value.lower()) if value else 0.0 for value in (read, corrected)) / 100
        if best >= FUZZY_CUTOFF:
            scored.append((-best, -created.timestamp(), page_number, line_number, line_id))
    scored.sort()
    return [(line_id, -negative) for negative, _, _, _, line_id in scored[:limit]]


def search_lines(session: Session, query: str, token_id: int | None = None, limit: int = 100) -> list[SearchHitOut]:
    """Lines whose read or corrected text resembles ``query``, most similar first (then newest jobs first)."""
    query = " ".join(query.split())[:MAX_QUERY]
    if not query:
        return []
    ranked = (_trigram_scores if _has_trigrams(session) else _fuzzy_scores)(session, query, token_id, limit)
    if not ranked:
        return []
    rows = session.execute(
        select(
            Line.id,
            Line.number,
            Line.page_id,
            Line.text,
            Line.corrected_text,
            Page.job_id,
            Page.number,
            Upload.filename,
        )
        .join(Page, Line.page_id == Page.id)
        .join(Upload, Page.upload_id == Upload.id)
        .where(Line.id.in_([line_id for line_id, _ in ranked]))
    )
    found = {row[0]: row for row in rows}
    hits = []
    for line_id, score in ranked:
        _, number, page_id, read, corrected, job_id, page_number, filename = found[line_id]
        hits.append(
            SearchHitOut(
                job_id=job_id,
                page_id=page_id,
                page_number=page_number,
                line_id=line_id,
                line_number=number,
                text=corrected if corrected is not None else (read or ""),
                corrected=corrected is not None,
                filename=filename,
                similarity=round(score, 4),
            )
        )
    return hits
