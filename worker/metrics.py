"""What the workers measure, as Prometheus metrics (see inkwell.metrics for how they are served).

Counters and histograms only: in multiprocess mode they add up across worker processes, and a
process that exits keeps its counts. The queue depth and the review backlog are measured when
``/metrics`` is scraped (webui.metrics), not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import Counter, Histogram

T = TypeVar("T")

PAGES_READ = Counter("inkwell_pages_read", "Pages whose lines were read and stored.")
LINES_READ = Counter("inkwell_lines_read", "Lines read and stored.")
PAGE_FAILURES = Counter("inkwell_page_failures", "Pages that failed, by reason.", ["reason"])
BATCH_PAGES = Histogram(
    "inkwell_batch_pages", "Pages gathered for one batched model run.", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
BATCH_LINES = Histogram(
    "inkwell_batch_lines", "Lines in one model call.", buckets=(1, 4, 16, 32, 64, 128, 256, 512, 1024, 4096)
)
MODEL_SECONDS_PER_LINE = Histogram(
    "inkwell_model_seconds_per_line",
    "Model time of one call divided by its lines.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DETECTION_SECONDS = Histogram(
    "inkwell_detection_seconds",
    "Time to find the text lines of one page.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# fail_page's messages, by how they start, to a short reason that can be a label.
_REASONS = (
    ("processing this page stopped its worker", "worker_lost"),
    ("the page's file is missing", "file_missing"),
    ("not enough memory", "out_of_memory"),
    ("a line image cannot be decoded", "line_image"),
    ("recognition failed", "recognition"),
)


def failure_reason(message: str) -> str:
    """The label for one of the pipeline's failure messages ('other' for any it does not know)."""
    for prefix, reason in _REASONS:
        if message.startswith(prefix):
            return reason
    return "other"


def page_failed(message: str, reason: str | None = None) -> None:
    PAGE_FAILURES.labels(reason or failure_reason(message)).inc()


def page_read(lines: int) -> None:
    PAGES_READ.inc()
    LINES_READ.inc(lines)


def observe_batch(pages: int) -> None:
    BATCH_PAGES.observe(pages)


def observe_recognition(lines: int, seconds: float) -> None:
    """Called by the recognizer after each call (its ``observer``)."""
    BATCH_LINES.observe(lines)
    if lines:
        MODEL_SECONDS_PER_LINE.observe(seconds / lines)


def timed_detection(find: Callable[..., T]) -> Callable[..., T]:
    """``find`` (a page's line detection), timed into ``inkwell_detection_seconds``."""

    def timed(*args, **kwargs) -> T:
        started = time.perf_counter()
        try:
            return find(*args, **kwargs)
        finally:
            DETECTION_SECONDS.observe(time.perf_counter() - started)

    return timed
