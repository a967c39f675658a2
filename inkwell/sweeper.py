"""The safety net behind the queues: pages whose message went missing are sent again.

A page is sent again when it has waited ``stale_after`` since its message was sent; pages never
sent (the broker was down when the job was accepted) are sent a job's window at a time. Sending twice is harmless, every step is
idempotent. Finished jobs that still owe their callback get it sent again too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from celery import Celery
from sqlalchemy import or_, select, update

from inkwell.db import Database
from inkwell.models import Job, JobStatus, Page, PageStatus, utcnow
from inkwell.queue import enqueue_callback, enqueue_pages, enqueue_recognition
from inkwell.scheduling import jobs_with_unsent_pages, send_next_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepReport:
    prepare: list[int]
    recognize: list[int]
    callbacks: list[str]


def sweep(db: Database, celery: Celery, stale_after: float, window: int = 4) -> SweepReport:
    """Send again what has been waiting too long; returns what was sent.

    Pages never sent are sent job by job, up to ``window`` in flight per job (inkwell/scheduling.py).
    """
    cutoff = utcnow() - timedelta(seconds=stale_after)
    waiting = or_(Page.queued_at.is_(None), Page.queued_at < cutoff)
    with db.session() as session:
        prepare = list(session.scalars(select(Page.id).where(Page.status == PageStatus.QUEUED, Page.queued_at < cutoff).order_by(Page.id)))
        recognize = list(session.scalars(select(Page.id).where(Page.status == PageStatus.PREPARED, waiting).order_by(Page.id)))
        callbacks = list(session.scalars(select(Job.id).where(
            Job.callback_state == "pending", Job.status.in_([JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL]),
            or_(Job.finished_at.is_(None), Job.finished_at < cutoff),
        )))
    resent = prepare if prepare and enqueue_pages(celery, prepare) else []
    sent_prepare = list(resent)
    for job_id in jobs_with_unsent_pages(db):
        sent_prepare += send_next_pages(db, celery, job_id, window)  # stamped as sent by the claim
    sent_recognize = recognize if recognize and enqueue_recognition(celery, recognize) else []
    sent = resent + sent_recognize
    if sent:
        with db.session() as session:
            session.execute(update(Page).where(Page.id.in_(sent)).values(queued_at=utcnow()))
    for job_id in callbacks:
        enqueue_callback(celery, job_id)
    if sent_prepare or sent_recognize or callbacks:
        log.info("sweeper sent %d pages to prepare, %d to read, %d callbacks", len(sent_prepare), len(sent_recognize), len(callbacks))
    return SweepReport(sent_prepare, sent_recognize, callbacks)
