"""Celery configuration shared by the web side (which only sends tasks, by name) and the workers.

Two queues: ``pages`` for CPU work (decoding, finding lines) and ``lines`` for the model (GPU
where there is one). Messages carry only ids; everything else is read from the database.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from celery import Celery
from kombu import Queue

from inkwell.config import Settings

log = logging.getLogger(__name__)

QUEUE_PAGES = "pages"
QUEUE_LINES = "lines"
TASK_PREPARE_PAGE = "inkwell.prepare_page"
TASK_RECOGNIZE_PAGE = "inkwell.recognize_page"


def make_celery(settings: Settings, include: Iterable[str] = ()) -> Celery:
    """A Celery app for ``settings``; workers pass ``include`` to register their task modules."""
    if settings.broker_url.startswith("sqla+sqlite"):
        settings.ensure_data_dir()
    app = Celery("inkwell", broker=settings.broker_url, include=list(include))
    app.conf.update(
        task_queues=(Queue(QUEUE_PAGES), Queue(QUEUE_LINES)),
        task_default_queue=QUEUE_PAGES,
        task_routes={TASK_PREPARE_PAGE: {"queue": QUEUE_PAGES}, TASK_RECOGNIZE_PAGE: {"queue": QUEUE_LINES}},
        # Results live in Inkwell's own tables; Celery's result backend would be a second copy.
        task_ignore_result=True,
        # A message is acknowledged only after its task finished, and given back if the worker
        # process dies, so a crash means redelivery rather than a lost page.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(1, settings.task_time_limit - 30),
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options=_transport_options(settings),
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_prefetch_multiplier=1,
    )
    return app


def _transport_options(settings: Settings) -> dict:
    if settings.broker_url.startswith("sqla+"):
        # kombu's SQL transport hands these straight to SQLAlchemy's create_engine: wait for
        # SQLite's lock (web and workers share the file) rather than fail.
        return {"connect_args": {"timeout": 30}} if settings.broker_url.startswith("sqla+sqlite") else {}
    # Redis: an unacknowledged message comes back after this long (longer than any batch).
    return {"visibility_timeout": settings.broker_visibility_timeout}


def lines_prefetch_multiplier(settings: Settings) -> int:
    """Prefetch that lets each 'lines' process hold a full batch: prefetch x concurrency >= flush_every."""
    return max(1, math.ceil(settings.lines_flush_every / settings.lines_concurrency))


def enqueue_pages(app: Celery, page_ids: Iterable[int]) -> bool:
    """Send one 'prepare page' message per page; call only after the pages are committed.

    Returns False (and logs) when the broker cannot be reached: the pages stay ``queued`` in
    the database, where nothing is lost, and can be sent again later.
    """
    try:
        with app.producer_or_acquire() as producer:
            for page_id in page_ids:
                app.send_task(
                    TASK_PREPARE_PAGE, args=[page_id], queue=QUEUE_PAGES, producer=producer,
                    retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
                )
    except Exception:  # noqa: BLE001 - any broker failure leaves the job queued, which is safe
        log.exception("could not enqueue pages; they stay queued in the database")
        return False
    return True
