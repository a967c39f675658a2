"""The workers' Celery app: the shared configuration plus the task modules and process hooks."""

from __future__ import annotations

import logging

from celery.signals import worker_init, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown

from inkwell.config import get_settings
from inkwell.queue import declare_sql_broker_queues, make_celery
from worker import runtime
from worker.heartbeat import Heartbeat

settings = get_settings()
app = make_celery(settings, include=["worker.tasks"])
_heartbeat: Heartbeat | None = None


@worker_init.connect
def _declare_queues(**_kwargs: object) -> None:
    # before the consumer starts: see declare_sql_broker_queues for the race this closes
    declare_sql_broker_queues(app)


@worker_process_init.connect
def _init_child(**_kwargs: object) -> None:
    logging.getLogger().setLevel(settings.log_level)
    runtime.after_fork()


@worker_process_shutdown.connect
def _child_exited(pid: int | None = None, **_kwargs: object) -> None:
    from inkwell.metrics import process_exited

    if pid is not None:
        process_exited(pid)


@worker_ready.connect
def _start_heartbeat(sender=None, **_kwargs: object) -> None:
    global _heartbeat
    queues = (
        ",".join(sorted(q.name for q in sender.app.amqp.queues.consume_from.values())) if sender is not None else ""
    )
    _heartbeat = Heartbeat(settings, sender.hostname if sender is not None else "worker", queues)
    _heartbeat.start()


@worker_shutdown.connect
def _stop_heartbeat(**_kwargs: object) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
