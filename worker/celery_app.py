"""The workers' Celery app: the shared configuration plus the task modules and process hooks."""

from __future__ import annotations

import logging

from celery.signals import worker_process_init

from inkwell.config import get_settings
from inkwell.queue import make_celery
from worker import runtime

settings = get_settings()
app = make_celery(settings, include=["worker.tasks"])


@worker_process_init.connect
def _init_child(**_kwargs: object) -> None:
    logging.getLogger().setLevel(settings.log_level)
    runtime.after_fork()
