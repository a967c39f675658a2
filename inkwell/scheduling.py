"""Fair scheduling of pages across jobs: each job has at most a few pages on the ``pages`` queue.

The queue is first in, first out; if a 100-page job sent all its pages at once, a one-page job
submitted a moment later would wait behind all of them. Instead a job sends its first
``window`` pages when it is accepted, and one more each time one of its pages has been prepared
(or has failed). Every job thus has at most ``window`` messages waiting, the queue interleaves
the jobs, and a new job's first page waits behind at most ``window`` pages of each job already
running.

A page's ``queued_at`` says it was sent (NULL: not yet). Claiming the next pages happens with
the job's row locked, so two workers finishing pages of one job at once cannot both send the
same page, nor overfill the window. Pages claimed but whose message could not be sent (broker
down) get their ``queued_at`` back to NULL, and the sweeper sends them later.
"""

from __future__ import annotations

from datetime import datetime

from celery import Celery
from sqlalchemy import func, select, update

from inkwell.db import Database
from inkwell.models import Job, Page, PageStatus, utcnow
from inkwell.queue import enqueue_pages


def claim_next_pages(db: Database, job_id: str, window: int) -> list[int]:
    """Mark the job's next unsent pages as sent, up to ``window`` in flight; their ids (committed)."""
    with db.session() as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            return []
        in_flight = session.scalar(
            select(func.count(Page.id)).where(
                Page.job_id == job_id, Page.status == PageStatus.QUEUED, Page.queued_at.is_not(None)
            )
        )
        room = window - int(in_flight or 0)
        if room <= 0:
            return []
        page_ids = list(
            session.scalars(
                select(Page.id)
                .where(Page.job_id == job_id, Page.status == PageStatus.QUEUED, Page.queued_at.is_(None))
                .order_by(Page.number)
                .limit(room)
            )
        )
        if page_ids:
            session.execute(update(Page).where(Page.id.in_(page_ids)).values(queued_at=utcnow()))
    return page_ids


def send_next_pages(db: Database, app: Celery, job_id: str, window: int) -> list[int]:
    """Claim and send the job's next pages (see the module's docstring); the ids sent."""
    page_ids = claim_next_pages(db, job_id, window)
    if page_ids and not enqueue_pages(app, page_ids):
        with db.session() as session:  # not sent after all: the sweeper will try again
            session.execute(update(Page).where(Page.id.in_(page_ids)).values(queued_at=None))
        return []
    return page_ids


def send_next_pages_of_page(db: Database, app: Celery, page_id: int, window: int) -> list[int]:
    """After a page was prepared (or failed): send the next pages of its job."""
    with db.session() as session:
        job_id = session.scalar(select(Page.job_id).where(Page.id == page_id))
    return send_next_pages(db, app, job_id, window) if job_id else []


def jobs_with_unsent_pages(db: Database, created_before: datetime | None = None) -> list[str]:
    """Jobs with pages never sent (accepted while the broker was down, or claimed and then not sent),
    counting only pages created before ``created_before`` when given."""
    unsent = [Page.status == PageStatus.QUEUED, Page.queued_at.is_(None)]
    if created_before is not None:
        unsent.append(Page.created_at < created_before)
    with db.session() as session:
        return list(
            session.scalars(select(Page.job_id).where(*unsent).group_by(Page.job_id).order_by(func.min(Page.id)))
        )
