"""Celery tasks: thin wrappers that hand ids to plain functions."""

from __future__ import annotations

import logging

from celery_batches import SimpleRequest
from sqlalchemy.exc import InterfaceError, OperationalError

from inkwell.callbacks import AddressPolicy, CallbackFailed, deliver_job_callback
from inkwell.queue import (
    QUEUE_LINES,
    TASK_PREPARE_PAGE,
    TASK_PURGE,
    TASK_RECOGNIZE_PAGE,
    TASK_SEND_CALLBACK,
    TASK_SWEEP,
    enqueue_callback,
)
from inkwell.retention import purge as purge_jobs
from inkwell.scheduling import send_next_pages_of_page
from inkwell.sweeper import sweep as sweep_once
from worker import metrics, pipeline, runtime
from worker.batching import RequeueingBatches
from worker.celery_app import app, settings

log = logging.getLogger(__name__)


def _callbacks_for(page_ids: list[int]) -> None:
    for job_id in pipeline.finished_jobs_with_pending_callbacks(runtime.database(), page_ids):
        enqueue_callback(app, job_id)


# The database down or restarting: retry with exponential backoff (jittered, at most a minute
# apart) instead of acknowledging the message and leaving the page to the sweeper.
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRY = {
    "autoretry_for": DATABASE_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": None,
}


@app.task(name=TASK_PREPARE_PAGE, acks_late=True, **DATABASE_RETRY)
def prepare_page(page_id: int) -> None:
    """CPU queue: rasterise the page and cut it into lines, then queue it for reading."""
    find_lines = metrics.timed_detection(lambda image: runtime.line_finder().find(image))
    if pipeline.prepare_page(runtime.database(), page_id, runtime.page_limits(settings), find_lines):
        recognize_page.apply_async(args=[page_id], queue=QUEUE_LINES)
    else:
        _callbacks_for([page_id])  # the page failed: its job may have finished with it
    # one page of the job done: the next one joins the queue behind other jobs' pages (fair scheduling)
    send_next_pages_of_page(runtime.database(), app, page_id, settings.pages_in_flight_per_job)


@app.task(
    name=TASK_RECOGNIZE_PAGE,
    base=RequeueingBatches,
    acks_late=True,
    flush_every=settings.lines_flush_every,
    flush_interval=settings.lines_flush_interval,
)
def recognize_page(requests: list[SimpleRequest]) -> None:
    """Model queue: buffer several pages' messages, read all their lines in one batched run."""
    page_ids = [int(request.args[0]) for request in requests]
    metrics.observe_batch(len(page_ids))
    try:
        pipeline.recognize_pages(runtime.database(), runtime.recognizer(), page_ids, settings.max_page_attempts)
        _callbacks_for(page_ids)
    except DATABASE_ERRORS:
        # A batch cannot be retried as one task: send each page again, later (pages already
        # stored are skipped when they come back). Backoff grows with the attempts counted so far.
        attempts = max((request.kwargs or {}).get("db_retries", 0) for request in requests)
        delay = min(60, 2 ** (attempts + 1))
        log.warning(
            "database error while reading %d pages; sending them again in %d s", len(page_ids), delay, exc_info=True
        )
        for page_id in dict.fromkeys(page_ids):
            recognize_page.apply_async(
                args=[page_id], kwargs={"db_retries": attempts + 1}, queue=QUEUE_LINES, countdown=delay
            )


@app.task(name=TASK_SEND_CALLBACK, bind=True, acks_late=True, max_retries=None)
def send_callback(self, job_id: str) -> str:
    """POST a finished job's summary to its callback URL; retried with exponential backoff."""
    try:
        return deliver_job_callback(
            runtime.database(),
            job_id,
            AddressPolicy.from_settings(settings),
            settings.callback_timeout_seconds,
            settings.callback_max_attempts,
        )
    except CallbackFailed as error:
        raise self.retry(exc=error, countdown=min(600, 2**self.request.retries * 5)) from None


@app.task(name=TASK_SWEEP)
def sweep() -> None:
    """Periodic (Celery beat): send again pages and callbacks whose messages went missing."""
    sweep_once(runtime.database(), app, settings.stale_after_seconds, settings.pages_in_flight_per_job)


@app.task(name=TASK_PURGE)
def purge() -> int:
    """Periodic (Celery beat): delete jobs older than the retention period, if one is set."""
    return purge_jobs(runtime.database(), settings.retention_days)
