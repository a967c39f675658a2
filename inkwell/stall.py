"""Is work moving? For ``/readyz``: a queue with pages waiting and nothing done is stalled.

A worker that writes its heartbeat can still be stuck (its prefetch window full of messages it
will never finish, say), so readiness also asks the database: a queue is stalled when a page has
waited on it longer than ``stall_after`` and no page has moved past it in that time. Pages
leave the ``pages`` queue prepared (their ``queued_at`` is set again as they are sent on to the
``lines`` queue) or failed; they leave the ``lines`` queue finished.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from inkwell.models import Page, PageStatus, utcnow
from inkwell.queue import QUEUE_LINES, QUEUE_PAGES


def stalled_queues(session: Session, stall_after: float) -> dict[str, str]:
    """Queues with work waiting longer than ``stall_after`` seconds and no progress in that time, and why."""
    cutoff = utcnow() - timedelta(seconds=stall_after)
    finished_lately = Page.finished_at >= cutoff
    moved_on = {
        QUEUE_PAGES: or_(finished_lately, and_(Page.status != PageStatus.QUEUED, Page.queued_at >= cutoff)),
        QUEUE_LINES: finished_lately,
    }
    waiting_status = {QUEUE_PAGES: PageStatus.QUEUED, QUEUE_LINES: PageStatus.PREPARED}
    stalled: dict[str, str] = {}
    for queue, status in waiting_status.items():
        waiting = exists().where(Page.status == status, Page.queued_at < cutoff)
        progress = exists().where(moved_on[queue])
        if session.scalar(select(and_(waiting, ~progress))):
            stalled[queue] = f"pages have waited over {stall_after:.0f} s and none moved on in that time"
    return stalled
