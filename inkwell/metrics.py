"""Prometheus metrics shared by every Inkwell process: where they are kept, and how they are served.

The web server (gunicorn) and the workers (Celery prefork) each run several processes, so the
metrics use ``prometheus_client``'s multiprocess mode: every process writes its samples to files
in one folder (``INKWELL_METRICS_DIR``), and whoever serves ``/metrics`` adds them up. The folder
must be named in ``PROMETHEUS_MULTIPROC_DIR`` before ``prometheus_client`` is first imported,
which is why the commands call :func:`use_metrics_dir` first thing.

``inkwell serve`` runs everything on one machine: its web server's ``/metrics`` shows the web, the
workers and the service gauges together. Where workers run elsewhere (docker compose, several
machines), ``INKWELL_METRICS_PORT`` makes each worker serve its own processes' metrics.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from inkwell.config import Settings

log = logging.getLogger(__name__)

ENVIRONMENT_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def metrics_dir(settings: Settings) -> Path:
    """The folder the processes of this machine write their metrics to."""
    return settings.metrics_dir or settings.data_dir / "metrics"


def use_metrics_dir(settings: Settings, empty: bool = False) -> Path:
    """Put this process (and the processes it starts) in multiprocess mode on the metrics folder.

    ``empty`` clears what earlier runs left there: only the process that owns the folder for the
    whole deployment (``inkwell serve``, or a standalone web or worker) may do that, before it
    starts anything that writes there.
    """
    folder = metrics_dir(settings)
    if empty and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[ENVIRONMENT_VARIABLE] = str(folder)
    return folder


def multiprocess_registry():
    """A registry holding every process's samples from the metrics folder (or this process's alone)."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    if os.environ.get(ENVIRONMENT_VARIABLE):
        MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    return registry


class _Forward:
    """Collects another registry's metrics (this process's own, outside multiprocess mode)."""

    def __init__(self, registry) -> None:
        self.registry = registry

    def collect(self):
        yield from self.registry.collect()


def process_exited(pid: int) -> None:
    """Tell the multiprocess collector a process is gone (its live gauges stop counting)."""
    if os.environ.get(ENVIRONMENT_VARIABLE):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve this machine's metrics folder on ``port`` (a worker's own endpoint), in a thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=multiprocess_registry())
    log.info("metrics on http://%s:%d/metrics", host, port)
