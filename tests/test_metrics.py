"""Prometheus metrics: the web side's request counts and the service gauges in-process, then the
whole service's metrics scraped from a running ``inkwell serve`` (web and workers in several
processes) after real jobs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from inkwell.config import Settings
from inkwell.migrate import upgrade
from tests.clients import api_client
from tests.conftest import make_settings
from tests.images import line_png
from tests.processes import Processes, create_token, free_port, wait_for_job, wait_until_up
from webui import create_app


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of a /metrics page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def _queue_and_backlog(settings: Settings) -> None:
    upgrade(settings)
    app = create_app(settings)
    client = api_client(app, ["submit", "read"])
    files = [(io.BytesIO(line_png(text)), f"{i}.png") for i, text in enumerate(["a", "b", "c"])]
    job_id = client.post("/api/v1/jobs", data={"files": files, "layout": "line"}).get_json()["id"]
    assert client.get("/api/v1/jobs/not-a-job").status_code == 404
    anonymous = app.test_client()
    page = anonymous.get("/metrics")
    assert page.status_code == 200 and page.mimetype == "text/plain"
    found = samples(page.get_data(as_text=True))
    # nothing consumes the queues here: the job's three page messages wait in the broker
    assert value(found, "inkwell_queue_messages", queue="pages") == 3
    assert value(found, "inkwell_queue_messages", queue="lines") == 0
    assert (
        value(found, "inkwell_pages", status="queued") == 3 and value(found, "inkwell_pages", status="succeeded") == 0
    )
    assert value(found, "inkwell_lines_needing_review") == 0 and value(found, "inkwell_pages_awaiting_review") == 0
    # requests by route (the URL rule, not the id) and status
    assert value(found, "inkwell_http_requests_total", route="/api/v1/jobs", method="POST", status="202") >= 1
    assert value(found, "inkwell_http_requests_total", route="/api/v1/jobs/<job_id>", method="GET", status="404") >= 1
    assert value(found, "inkwell_http_request_seconds_count", route="/api/v1/jobs", method="POST") >= 1
    assert job_id


def test_queue_depth_and_requests_on_the_embedded_broker(tmp_path: Path) -> None:
    _queue_and_backlog(make_settings(tmp_path))


@pytest.mark.redis
def test_queue_depth_on_redis(tmp_path: Path, redis_url: str) -> None:
    _queue_and_backlog(make_settings(tmp_path, broker_url=redis_url))


def test_page_failures_are_counted_by_reason() -> None:
    from worker import metrics

    assert (
        metrics.failure_reason(
            "processing this page stopped its worker 3 times (killed, or out of memory); it was not tried again"
        )
        == "worker_lost"
    )
    assert metrics.failure_reason("recognition failed: RuntimeError: boom") == "recognition"
    assert metrics.failure_reason("something new") == "other"
    before = metrics.PAGE_FAILURES.labels("undecodable")._value.get()
    metrics.page_failed("the PDF page cannot be rendered", "undecodable")
    assert metrics.PAGE_FAILURES.labels("undecodable")._value.get() == before + 1


@pytest.mark.slow
def test_metrics_of_a_running_service(tmp_path: Path, tiny_char_model: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "INKWELL_DATA_DIR": str(tmp_path / "var"),
        "INKWELL_MODEL": str(tiny_char_model),
        "INKWELL_WEB_PORT": str(port),
        "INKWELL_WEB_WORKERS": "2",
        "INKWELL_PAGES_CONCURRENCY": "2",
        "INKWELL_LINES_FLUSH_EVERY": "4",
        "INKWELL_LINES_FLUSH_INTERVAL": "0.3",
        "INKWELL_REVIEW_THRESHOLD": "1.0",
    }
    processes = Processes(env, tmp_path)
    stale = tmp_path / "var" / "metrics" / "counter_999999.db"  # left by an earlier run: serve starts afresh
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not a metrics file")
    processes.start("serve", "serve")
    try:
        wait_until_up(f"{base}/readyz", processes, timeout=120)
        auth = create_token(processes)
        lines = [
            ("files", (f"line{i}.png", line_png(text), "image/png"))
            for i, text in enumerate(["hello world", "Jane Doe", "ink"])
        ]
        first = requests.post(
            f"{base}/api/v1/jobs", files=lines, data={"layout": "line"}, headers=auth, timeout=30
        ).json()["id"]
        page = [
            ("files", ("page.png", line_png("Form 42"), "image/png"))
        ]  # found by the line detector: a timed detection
        second = requests.post(
            f"{base}/api/v1/jobs", files=page, data={"layout": "page"}, headers=auth, timeout=30
        ).json()["id"]
        for job_id in (first, second):
            assert wait_for_job(base, job_id, processes, auth)["status"] == "succeeded"
        found = samples(requests.get(f"{base}/metrics", timeout=30).text)
    finally:
        processes.stop_all()
    assert not stale.exists()
    # the workers' samples (other processes than the web server's) are in the web server's scrape
    assert value(found, "inkwell_pages_read_total") == 4
    assert value(found, "inkwell_lines_read_total") >= 4
    assert value(found, "inkwell_detection_seconds_count") == 1
    assert value(found, "inkwell_batch_pages_count") >= 1 and value(found, "inkwell_batch_pages_sum") == 4
    assert value(found, "inkwell_batch_lines_sum") >= 4 and value(found, "inkwell_model_seconds_per_line_count") >= 1
    assert value(found, "inkwell_model_seconds_per_line_sum") > 0
    assert value(found, "inkwell_http_requests_total", route="/api/v1/jobs", method="POST", status="202") == 2
    assert value(found, "inkwell_http_request_seconds_count", route="/api/v1/jobs/<job_id>", method="GET") >= 2
    assert (
        value(found, "inkwell_queue_messages", queue="pages") == 0
        and value(found, "inkwell_queue_messages", queue="lines") == 0
    )
    assert value(found, "inkwell_pages", status="succeeded") == 4
    # with a review threshold of 1.0 every read line waits for a reviewer
    assert value(found, "inkwell_lines_needing_review") >= 4 and value(found, "inkwell_pages_awaiting_review") == 4


@pytest.mark.slow
def test_workers_elsewhere_serve_their_own_metrics(tmp_path: Path, tiny_char_model: Path) -> None:
    """Web and workers as on separate machines (a metrics folder each): every worker serves its
    processes' samples on INKWELL_METRICS_PORT, the web server its own and the service gauges."""
    port, pages_port, lines_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "INKWELL_DATA_DIR": str(tmp_path / "var"),
        "INKWELL_MODEL": str(tiny_char_model),
        "INKWELL_WEB_PORT": str(port),
        "INKWELL_WEB_WORKERS": "1",
        "INKWELL_PAGES_CONCURRENCY": "2",
        "INKWELL_LINES_FLUSH_INTERVAL": "0.3",
    }
    web = Processes({**env, "INKWELL_METRICS_DIR": str(tmp_path / "metrics-web")}, tmp_path)
    pages = Processes(
        {**env, "INKWELL_METRICS_DIR": str(tmp_path / "metrics-pages"), "INKWELL_METRICS_PORT": str(pages_port)},
        tmp_path,
    )
    lines = Processes(
        {**env, "INKWELL_METRICS_DIR": str(tmp_path / "metrics-lines"), "INKWELL_METRICS_PORT": str(lines_port)},
        tmp_path,
    )
    web.run("migrate")
    try:
        web.start("web", "web")
        pages.start("pages", "worker", "-Q", "pages")
        lines.start("lines", "worker", "-Q", "lines")
        web.children.update(pages.children)  # so that waiting notices (and logs) any of them
        web.children.update(lines.children)
        wait_until_up(f"{base}/readyz", web, timeout=120)
        auth = create_token(web)
        files = [
            ("files", (f"line{i}.png", line_png(text), "image/png")) for i, text in enumerate(["hello world", "ink"])
        ]
        job_id = requests.post(
            f"{base}/api/v1/jobs", files=files, data={"layout": "page"}, headers=auth, timeout=30
        ).json()["id"]
        assert wait_for_job(base, job_id, web, auth)["status"] == "succeeded"
        on_pages = samples(requests.get(f"http://127.0.0.1:{pages_port}/metrics", timeout=10).text)
        on_lines = samples(requests.get(f"http://127.0.0.1:{lines_port}/metrics", timeout=10).text)
        on_web = samples(requests.get(f"{base}/metrics", timeout=10).text)
    finally:
        web.stop_all()
    assert value(on_pages, "inkwell_detection_seconds_count") == 2  # in the pages worker's child processes
    assert not value(on_pages, "inkwell_pages_read_total")
    assert value(on_lines, "inkwell_pages_read_total") == 2 and value(on_lines, "inkwell_batch_pages_sum") == 2
    assert not value(on_lines, "inkwell_detection_seconds_count")
    assert value(on_web, "inkwell_http_requests_total", route="/api/v1/jobs", method="POST", status="202") == 1
    assert value(on_web, "inkwell_pages", status="succeeded") == 2 and not value(on_web, "inkwell_pages_read_total")
