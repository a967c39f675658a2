"""celery-batches, giving a batch's messages back when the process reading it dies.

celery-batches acknowledges a batch's messages only when the batch succeeds and does nothing
when the pool process running it dies (killed, out of memory): the messages stayed unacknowledged
in the worker, filled its prefetch window, and the worker read nothing more until it was
restarted. Here the pool's error callback rejects them with ``requeue=True``, so the broker hands
them out again at once and the worker goes on by itself; which of those pages were being read
when the process died is known from their attempt counts (see ``worker.pipeline``).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from billiard.einfo import ExceptionInfo
from celery.worker.request import Request
from celery_batches import Batches, SimpleRequest, partition
from celery_batches.trace import apply_batches_task

log = logging.getLogger(__name__)


class RequeueingBatches(Batches):
    """A ``Batches`` task whose messages go back to the queue if its pool process is lost."""

    abstract = True

    def flush(self, requests: Collection[Request]) -> Any:
        """celery-batches' flush, plus an error callback that requeues the batch's late-acknowledged messages."""
        acks_early, acks_late = (
            list(group) for group in partition(lambda r: bool(r.task.acks_late), requests)
        )  # lists: read twice
        serializable_requests = ([SimpleRequest.from_request(r) for r in requests],)

        def on_accepted(pid: int, time_accepted: float) -> None:
            for req in acks_early:
                req.acknowledge()

        def on_return(result: Any) -> None:
            for req in acks_late:
                req.acknowledge()

        def on_error(error: ExceptionInfo | BaseException) -> None:
            # The pool process died (WorkerLostError) or the batch could not run: give every
            # message back rather than hold it unacknowledged for ever.
            log.warning(
                "a batch of %d messages was lost with its process (%s); requeueing them",
                len(acks_late),
                getattr(error, "exception", error),
            )
            for req in acks_late:
                req.reject(requeue=True)

        return self._pool.apply_async(
            apply_batches_task,
            (self, serializable_requests, 0, None),
            accept_callback=on_accepted,
            callback=on_return,
            error_callback=on_error,
        )
