"""Celery tasks: thin wrappers that hand ids to the pipeline functions."""

from __future__ import annotations

from celery_batches import Batches, SimpleRequest

from inkwell.queue import QUEUE_LINES, TASK_PREPARE_PAGE, TASK_RECOGNIZE_PAGE
from worker import pipeline, runtime
from worker.celery_app import app, settings


@app.task(name=TASK_PREPARE_PAGE, acks_late=True)
def prepare_page(page_id: int) -> None:
    """CPU queue: decode the page and cut it into lines, then queue it for reading."""
    if pipeline.prepare_page(runtime.database(), page_id, runtime.page_limits(settings), lambda image: runtime.line_finder().find(image)):
        recognize_page.apply_async(args=[page_id], queue=QUEUE_LINES)


@app.task(
    name=TASK_RECOGNIZE_PAGE,
    base=Batches,
    acks_late=True,
    flush_every=settings.lines_flush_every,
    flush_interval=settings.lines_flush_interval,
)
def recognize_page(requests: list[SimpleRequest]) -> None:
    """Model queue: buffer several pages' messages, read all their lines in one batched run."""
    page_ids = [int(request.args[0]) for request in requests]
    pipeline.recognize_pages(runtime.database(), runtime.recognizer(), page_ids)
