"""Celery configuration shared by the web side (which only sends tasks, by name) and the workers.

Two queues: ``pages`` for CPU work (decoding, finding lines) and ``lines`` for the model (GPU
where there is one); a third, ``maintenance``, for the sweeper and the purge, served by every
``pages`` worker beside its pages, so that a backlog of pages never delays the sweeper. Messages
carry only ids; everything else is read from the database.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any

from celery import Celery
from kombu import Queue
from sqlalchemy.exc import DBAPIError

from inkwell.config import Settings

log = logging.getLogger(__name__)

QUEUE_PAGES = "pages"
QUEUE_LINES = "lines"
QUEUE_MAINTENANCE = "maintenance"  # the sweeper and the purge: never stuck behind a backlog of pages
TASK_PREPARE_PAGE = "inkwell.prepare_page"
TASK_RECOGNIZE_PAGE = "inkwell.recognize_page"
TASK_READ_LINES = "inkwell.read_lines"  # lines a reviewer drew or reshaped
TASK_SEND_CALLBACK = "inkwell.send_callback"
TASK_SWEEP = "inkwell.sweep"
TASK_PURGE = "inkwell.purge"


def make_celery(settings: Settings, include: Iterable[str] = ()) -> Celery:
    """A Celery app for ``settings``; workers pass ``include`` to register their task modules."""
    if settings.broker_url.startswith("sqla+sqlite"):
        settings.ensure_data_dir()
    app = Celery("inkwell", broker=settings.broker_url, include=list(include))
    app.conf.update(
        task_queues=(Queue(QUEUE_PAGES), Queue(QUEUE_LINES), Queue(QUEUE_MAINTENANCE)),
        task_default_queue=QUEUE_PAGES,
        task_routes={
            TASK_PREPARE_PAGE: {"queue": QUEUE_PAGES},
            TASK_RECOGNIZE_PAGE: {"queue": QUEUE_LINES},
            TASK_READ_LINES: {"queue": QUEUE_LINES},
            TASK_SEND_CALLBACK: {"queue": QUEUE_PAGES},
            TASK_SWEEP: {"queue": QUEUE_MAINTENANCE},
            TASK_PURGE: {"queue": QUEUE_MAINTENANCE},
        },
        beat_schedule={
            "sweep": {"task": TASK_SWEEP, "schedule": float(settings.sweep_interval_seconds)},
            "purge": {"task": TASK_PURGE, "schedule": 3600.0},
        },
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


def declare_sql_broker_queues(app: Celery, attempts: int = 5) -> bool:
    """Create the SQL broker's tables and queue rows before this process sends or consumes a message.

    kombu's SQL transport creates them on first use, safely across threads but not across
    processes: when the web server and the workers start together on a new broker database, two
    of them can insert the same queue row, and the loser's publish or declare fails on the unique
    constraint (a job's first pages then wait for the sweeper). Each process declares here at
    start-up instead, looking again when another process got there first. Other brokers need
    nothing. True when the queues are in place (or need no declaring); False (logged), never an
    exception, when the broker could not be reached or refused: callers go on as in any broker
    outage, where the database keeps the work and the sweeper sends it.
    """
    if not app.conf.broker_url.startswith("sqla+"):
        return True
    for attempt in range(1, attempts + 1):
        try:
            with app.connection_for_write() as connection:
                channel = connection.default_channel
                try:
                    for queue in app.conf.task_queues:
                        queue.bind(channel).declare()
                finally:
                    # kombu leaves its session open: give the connection back (rolled back after a
                    # failure). Forked worker processes drop the pool itself (forget_inherited_broker_connections).
                    channel.session.close()
            return True
        except DBAPIError as error:  # another process created it first (unique, table exists), a lock, down
            if attempt == attempts:
                log.warning("could not declare the broker's queues: %s", error)
                return False
            time.sleep(0.1 * attempt)
        except Exception:  # noqa: BLE001 - whatever else the broker does, this process must still start
            log.exception("could not declare the broker's queues")
            return False
    return False


def forget_inherited_broker_connections() -> None:
    """In a freshly forked process: let go of the SQL broker connections the parent had pooled.

    kombu keeps one engine per broker URL for the whole process, so a forked worker child inherits
    the parent's pooled connections; publishing on one of them would share it (an SQLite handle, a
    PostgreSQL socket) with the parent. ``dispose(close=False)`` is SQLAlchemy's way after a fork.
    """
    from kombu.transport.sqlalchemy import Channel

    for engine, _session_factory in list(getattr(Channel, "_engines", {}).values()):
        engine.dispose(close=False)


def _transport_options(settings: Settings) -> dict:
    if settings.broker_url.startswith("sqla+sqlite"):
        # kombu's SQL transport hands these straight to SQLAlchemy's create_engine: wait for
        # SQLite's lock (web and workers share the file) rather than fail.
        return {"connect_args": {"timeout": 30}}
    if settings.broker_url.startswith("sqla+"):
        # a PostgreSQL broker that does not answer: fail in seconds (psycopg waits 130 s by default)
        return {"connect_args": {"connect_timeout": 5}}
    # Redis: an unacknowledged message comes back after this long (longer than any batch).
    return {"visibility_timeout": settings.broker_visibility_timeout}


def lines_prefetch_multiplier(settings: Settings) -> int:
    """Prefetch that lets each 'lines' process hold a full batch: prefetch x concurrency >= flush_every."""
    return max(1, math.ceil(settings.lines_flush_every / settings.lines_concurrency))


def _send(
    app: Celery,
    task: str,
    queue: str,
    arguments: Iterable,
    kwargs: dict[str, Any] | None = None,
    countdown: float | None = None,
) -> bool:
    """Send one ``task`` message per argument; False (logged) when the broker cannot be reached."""
    try:
        with app.producer_or_acquire() as producer:
            for argument in arguments:
                app.send_task(
                    task,
                    args=[argument],
                    kwargs=kwargs,
                    countdown=countdown,
                    queue=queue,
                    producer=producer,
                    retry=True,
                    retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
                )
    except Exception:  # noqa: BLE001 - any broker failure: the database still holds the work, the sweeper resends it
        log.exception("could not send %s messages", task)
        return False
    return True


def enqueue_pages(app: Celery, page_ids: Iterable[int]) -> bool:
    """Send one 'prepare page' message per page; call only after the pages are committed.

    Returns False (and logs) when the broker cannot be reached: the pages stay ``queued`` in
    the database, where nothing is lost, and the sweeper sends them later.
    """
    return _send(app, TASK_PREPARE_PAGE, QUEUE_PAGES, page_ids)


def enqueue_recognition(app: Celery, page_ids: Iterable[int]) -> bool:
    """Send prepared pages to the model queue."""
    return _send(app, TASK_RECOGNIZE_PAGE, QUEUE_LINES, page_ids)


def enqueue_line_reading(app: Celery, line_ids: list[int]) -> bool:
    """Send lines a reviewer drew or reshaped to the model queue, as one message; call after commit."""
    return _send(app, TASK_READ_LINES, QUEUE_LINES, [list(line_ids)])


def enqueue_recognition_later(app: Celery, page_ids: Iterable[int], db_retries: int, countdown: float) -> bool:
    """Send pages to the model queue again after ``countdown`` seconds (a batch that met a database
    outage); ``db_retries`` travels with them so the backoff grows."""
    return _send(app, TASK_RECOGNIZE_PAGE, QUEUE_LINES, page_ids, {"db_retries": db_retries}, countdown)


def enqueue_callback(app: Celery, job_id: str) -> bool:
    return _send(app, TASK_SEND_CALLBACK, QUEUE_PAGES, [job_id])
