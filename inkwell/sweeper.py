"""The safety net behind the queues: pages whose message went missing are sent again.

A page is sent again when it has waited ``stale_after`` since its message was sent and the
broker no longer holds its message (Redis: neither waiting in the queue nor delivered and
unacknowledged), so a backlog is never sent twice. Pages of a job not sent yet (its pages beyond
the per-job window of inkwell/scheduling.py, or all of them when the broker was down as the job
was accepted) are sent a job's window at a time. Sending twice would be harmless all the same:
every step is idempotent. Finished jobs that still owe their callback get it sent again too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery
from sqlalchemy import and_, or_, select, update

from inkwell.broker_contents import held_arguments
from inkwell.db import Database
from inkwell.models import Job, JobStatus, Page, PageStatus, utcnow
from inkwell.queue import (
    QUEUE_LINES,
    QUEUE_PAGES,
    TASK_PREPARE_PAGE,
    TASK_RECOGNIZE_PAGE,
    enqueue_callback,
    enqueue_pages,
    enqueue_recognition,
)
from inkwell.scheduling import jobs_with_unsent_pages, send_next_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    prepare: list[int]
    recognize: list[int]
    callbacks: list[str]


def _lost(page_ids: list[int], celery: Celery, queue: str, task: str) -> list[int]:
    """The pages among ``page_ids`` whose message the broker no longer holds (all of them when it cannot tell)."""
    if not page_ids:
        return []
    held = held_arguments(celery, queue, task)
    return page_ids if held is None else [page_id for page_id in page_ids if page_id not in held]


def _waited_since(cutoff):
    # Never sent counts only once the page is older than the cutoff too: a job just accepted is
    # committed a moment before the web process sends its messages, and is not lost meanwhile.
    return or_(and_(Page.queued_at.is_(None), Page.created_at < cutoff), Page.queued_at < cutoff)


def _still_waiting(session, page_ids: list[int], status: PageStatus, cutoff) -> list[int]:
    if not page_ids:
        return []
    return list(
        session.scalars(
            select(Page.id).where(Page.id.in_(page_ids), Page.status == status, _waited_since(cutoff)).order_by(Page.id)
        )
    )


def sweep(db: Database, celery: Celery, stale_after: float, window: int = 4) -> SweepReport:
    """Send again what has been waiting too long and whose message is gone; returns what was sent.

    Pages never sent are sent job by job, up to ``window`` in flight per job (inkwell/scheduling.py).
    """
    cutoff = utcnow() - timedelta(seconds=stale_after)
    waiting = _waited_since(cutoff)
    with db.session() as session:
        prepare = list(
            session.scalars(
                select(Page.id).where(Page.status == PageStatus.QUEUED, Page.queued_at < cutoff).order_by(Page.id)
            )
        )
        recognize = list(
            session.scalars(select(Page.id).where(Page.status == PageStatus.PREPARED, waiting).order_by(Page.id))
        )
    # A page still in the broker (waiting behind a backlog, or delivered and being worked on) is not lost.
    prepare = _lost(prepare, celery, QUEUE_PAGES, TASK_PREPARE_PAGE)
    recognize = _lost(recognize, celery, QUEUE_LINES, TASK_RECOGNIZE_PAGE)
    with db.session() as session:
        # only what is still waiting now: a message may have been worked on while the broker was read
        prepare = _still_waiting(session, prepare, PageStatus.QUEUED, cutoff)
        recognize = _still_waiting(session, recognize, PageStatus.PREPARED, cutoff)
        callbacks = list(
            session.scalars(
                select(Job.id).where(
                    Job.callback_state == "pending",
                    Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL]),
                    or_(Job.finished_at.is_(None), Job.finished_at < cutoff),
                )
            )
        )
    resent = prepare if prepare and enqueue_pages(celery, prepare) else []
    sent_prepare = list(resent)
    # Only pages accepted before the cutoff: a job just accepted is committed a moment before the
    # web process sends its first pages, and is not lost meanwhile.
    for job_id in jobs_with_unsent_pages(db, created_before=cutoff):
        sent_prepare += send_next_pages(db, celery, job_id, window)  # stamped as sent by the claim
    sent_recognize = recognize if recognize and enqueue_recognition(celery, recognize) else []
    sent = resent + sent_recognize
    if sent:
        with db.session() as session:
            session.execute(update(Page).where(Page.id.in_(sent)).values(queued_at=utcnow()))
    for job_id in callbacks:
        enqueue_callback(celery, job_id)
    if sent_prepare or sent_recognize or callbacks:
        log.info(
            "sweeper sent %d pages to prepare, %d to read, %d callbacks",
            len(sent_prepare),
            len(sent_recognize),
            len(callbacks),
        )
    return SweepReport(sent_prepare, sent_recognize, callbacks)
