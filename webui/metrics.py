"""``/metrics`` for Prometheus: the web server's requests, the workers' samples, and service gauges.

Requests are counted by route (the URL rule, so ids do not make new series), method and status,
and timed. At each scrape the service gauges are measured: messages waiting in each broker queue,
pages by status and the review backlog. In multiprocess mode (see inkwell.metrics) the samples of
every process on this machine are added up: under ``inkwell serve`` that is the web server's
processes and both workers'.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from inkwell.metrics import multiprocess_registry
from inkwell.models import Line, Page, PageStatus
from inkwell.queue import QUEUE_LINES, QUEUE_PAGES
from inkwell.review import needs_review_clause
from webui.state import celery_app, database, settings

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "inkwell_http_requests", "HTTP requests answered, by route, method and status.", ["route", "method", "status"]
)
LATENCY = Histogram(
    "inkwell_http_request_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


class ServiceCollector:
    """Gauges read when scraped: broker queue depth, pages by status, lines and pages awaiting review."""

    def collect(self):
        queue = GaugeMetricFamily("inkwell_queue_messages", "Messages waiting in each broker queue.", labels=["queue"])
        try:
            with celery_app().connection_for_read() as connection:
                # One try, bounded: a scrape must answer while the broker is down (kombu retries forever by default).
                connection.ensure_connection(max_retries=1, timeout=3)
                channel = connection.default_channel
                for name in (QUEUE_PAGES, QUEUE_LINES):
                    queue.add_metric([name], _queue_size(channel, name))
            yield queue
        except Exception as error:  # noqa: BLE001 - the broker is down: leave the gauge out, keep the rest
            log.warning("queue depth not measured: %s", error)
        try:
            yield from self._database_gauges()
        except Exception as error:  # noqa: BLE001
            log.warning("database gauges not measured: %s", error)

    @staticmethod
    def _database_gauges():
        pages = GaugeMetricFamily("inkwell_pages", "Pages by status.", labels=["status"])
        review = GaugeMetricFamily(
            "inkwell_lines_needing_review", "Read lines under the review threshold that no one has checked yet."
        )
        unreviewed = GaugeMetricFamily("inkwell_pages_awaiting_review", "Read pages not yet marked reviewed.")
        with database().session() as session:
            counts = dict(session.execute(select(Page.status, func.count()).group_by(Page.status)).all())
            backlog = session.scalar(
                select(func.count()).select_from(Line).where(needs_review_clause(settings().review_threshold))
            )
            waiting = session.scalar(
                select(func.count())
                .select_from(Page)
                .where(Page.status == PageStatus.SUCCEEDED, Page.reviewed_at.is_(None))
            )
        for status in PageStatus:
            pages.add_metric([status.value], counts.get(status, 0))
        review.add_metric([], backlog or 0)
        unreviewed.add_metric([], waiting or 0)
        yield from (pages, review, unreviewed)


def _queue_size(channel, name: str) -> int:
    from kombu.exceptions import ChannelError

    try:
        return channel.queue_declare(queue=name, passive=True).message_count
    except ChannelError:  # never declared yet: nothing was ever sent to it
        return 0


def init_metrics(app: Flask) -> None:
    """Count and time every request; serve ``/metrics`` (public, like the health checks)."""

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        route, method = _route(), request.method
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        if started is not None:
            LATENCY.labels(route, method).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        registry = multiprocess_registry()
        registry.register(ServiceCollector())
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
