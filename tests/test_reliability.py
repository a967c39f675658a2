"""Reliability and security in-process: idempotent submission, signed callbacks (and what they may
not reach), the sweeper, retention, pages that keep killing workers, readiness."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select, update

from inkwell.callbacks import (
    AddressPolicy,
    CallbackFailed,
    CallbackRefused,
    check_callback_url,
    deliver,
    deliver_job_callback,
    denied_networks,
    refusal,
)
from inkwell.config import Settings
from inkwell.db import Database
from inkwell.jobs import AcceptedFile, create_job, refresh_job
from inkwell.migrate import upgrade
from inkwell.models import ApiToken, Job, JobStatus, Page, PageStatus, Upload, WorkerHeartbeat, utcnow
from inkwell.queue import QUEUE_LINES, QUEUE_PAGES, make_celery
from inkwell.retention import purge
from inkwell.sweeper import sweep
from tests.broker import drain
from tests.clients import api_client
from tests.images import line_png
from webui import create_app
from worker.pipeline import PageLimits, prepare_page, recognize_pages

DEFAULT_DENIED = AddressPolicy(tuple(denied_networks(Settings.model_fields["callback_denied_networks"].default)))
# the tests' receivers listen on the loopback interface: an internal receiver, explicitly allowed
LOOPBACK_ALLOWED = AddressPolicy(DEFAULT_DENIED.denied, tuple(denied_networks("127.0.0.0/8")))


@pytest.fixture
def app(backend_settings: Settings) -> Flask:
    upgrade(backend_settings)
    return create_app(backend_settings)


@pytest.fixture
def loopback_app(backend_settings: Settings) -> Flask:
    """The app with the loopback network allowed for callbacks (where the tests' receivers listen)."""
    upgrade(backend_settings)
    return create_app(backend_settings.model_copy(update={"callback_allowed_networks": "127.0.0.0/8"}))


def _db(app: Flask) -> Database:
    return app.extensions["inkwell"]["database"]


def _files(*texts: str) -> dict:
    return {"files": [(io.BytesIO(line_png(t)), f"{i}.png") for i, t in enumerate(texts)], "layout": "line"}


def _drain(celery, queue: str) -> list[int]:
    return [arguments[0] for _, arguments in drain(celery, queue)]


# -- idempotency -------------------------------------------------------------------------------


def test_a_retried_submission_returns_the_original_job(app: Flask) -> None:
    client = api_client(app, ["submit", "read"])
    headers = {"Idempotency-Key": "order-7781"}
    first = client.post("/api/v1/jobs", data=_files("yes", "ink"), headers=headers)
    again = client.post("/api/v1/jobs", data=_files("yes", "ink"), headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    with _db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1
        assert session.scalar(select(func.count()).select_from(Upload)) == 2
        session.get(Job, first.get_json()["id"]).status = JobStatus.SUCCEEDED
    # a replay answers with the job as it is now, not as it was when first submitted
    finished = client.post("/api/v1/jobs", data=_files("yes", "ink"), headers=headers)
    assert finished.status_code == 202 and finished.get_json() == {"id": first.get_json()["id"], "status": "succeeded"}
    assert "Retry-After" not in finished.headers
    other_content = client.post("/api/v1/jobs", data=_files("no"), headers=headers)
    assert other_content.status_code == 422 and other_content.get_json()["error"]["code"] == "idempotency_key_reused"
    # keys belong to their caller: another token's same key is another job
    stranger = api_client(app, ["submit"]).post("/api/v1/jobs", data=_files("yes", "ink"), headers=headers)
    assert stranger.status_code == 202 and stranger.get_json()["id"] != first.get_json()["id"]
    assert client.post("/api/v1/jobs", data=_files("x"), headers={"Idempotency-Key": "k" * 201}).status_code == 400


def test_concurrent_retries_make_one_job(app: Flask) -> None:
    client = api_client(app, ["submit"])
    token = client.environ_base["HTTP_AUTHORIZATION"]
    results: list = []

    def post() -> None:
        local = app.test_client()
        results.append(
            local.post(
                "/api/v1/jobs", data=_files("Form 42"), headers={"Authorization": token, "Idempotency-Key": "same"}
            )
        )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.status_code for r in results} == {202}
    assert len({r.get_json()["id"] for r in results}) == 1
    with _db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 1


# -- callbacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/x",
        "file:///etc/passwd",
        "http://user:pw@example.org/",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/",
        "http://metadata.google.internal/",
        "https:///nohost",
        "http://example.org:99999/",
        "javascript:alert(1)",
    ],
)
def test_callback_urls_that_are_refused(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check_callback_url(url, DEFAULT_DENIED)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "::1",
        "10.0.0.5",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "::",
        "fd00::1",
        "fe80::1%eth0",
        "224.0.0.1",
        "100.100.100.200",
        "fd00:ec2::254",
        # IPv6 forms of the metadata address and of loopback: mapped, compatible, NAT64, 6to4, Teredo
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "::169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "2002:a9fe:a9fe:1::1",
        "2002:7f00:1::",
        "::ffff:127.0.0.1",
        "::127.0.0.1",
        "2001:0:4136:e378:8000:63bf:5601:5601",  # Teredo whose client is 169.254.169.254 (obfuscated: 0x5601 = ~0xa9fe)
    ],
)
def test_callback_addresses_that_are_refused_in_every_form(address: str) -> None:
    assert refusal(address, DEFAULT_DENIED) is not None
    bracketed = f"[{address.split('%')[0]}]" if ":" in address else address
    with pytest.raises(CallbackRefused):
        check_callback_url(f"http://{bracketed}:8080/hook", DEFAULT_DENIED)


def test_public_addresses_are_allowed_and_internal_ones_only_when_listed() -> None:
    for public in (
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        "::ffff:93.184.215.14",
        "2002:5db8:d70e::1",
        "64:ff9b::5db8:d70e",
    ):
        assert refusal(public, DEFAULT_DENIED) is None, public
    internal = AddressPolicy(DEFAULT_DENIED.denied, tuple(denied_networks("10.1.0.0/16,127.0.0.0/8")))
    assert (
        refusal("10.1.2.3", internal) is None
        and refusal("::ffff:10.1.2.3", internal) is None
        and refusal("127.0.0.1", internal) is None
    )
    assert refusal("10.2.0.1", internal) is not None, "only the listed networks"
    everything = AddressPolicy(DEFAULT_DENIED.denied, tuple(denied_networks("0.0.0.0/0,::/0")))
    assert refusal("169.254.169.254", everything) is not None, "the denied networks win over the allow-list"
    assert refusal("64:ff9b::a9fe:a9fe", everything) is not None


def test_callback_url_is_checked_at_submission(app: Flask) -> None:
    client = api_client(app, ["submit"])
    refused = client.post("/api/v1/jobs", data={**_files("x"), "callback_url": "http://169.254.169.254/"})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_callback_url"
    assert (
        client.post(
            "/api/v1/jobs", data={**_files("x"), "callback_url": "https://hooks.example.org/inkwell"}
        ).status_code
        == 202
    )


class _Receiver:
    """A local HTTP server that records callbacks and answers with a status chosen by the test."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Location", "http://169.254.169.254/")  # a redirect must not be followed
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/inkwell?x=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver():
    server = _Receiver()
    yield server
    server.close()


def _finished_job_with_callback(app: Flask, url: str) -> tuple[str, str]:
    client = api_client(app, ["submit"])
    job_id = client.post("/api/v1/jobs", data={**_files("x"), "callback_url": url}).get_json()["id"]
    with _db(app).session() as session:
        job = session.get(Job, job_id)
        job.pages[0].status = PageStatus.SUCCEEDED
        session.flush()
        refresh_job(session, job)
        secret = session.get(ApiToken, job.token_id).webhook_secret
    return job_id, secret


def test_callbacks_are_signed_and_delivered_once(loopback_app: Flask, receiver: _Receiver) -> None:
    job_id, secret = _finished_job_with_callback(loopback_app, receiver.url)
    assert deliver_job_callback(_db(loopback_app), job_id, LOOPBACK_ALLOWED, 5, 3) == "delivered"
    assert (
        deliver_job_callback(_db(loopback_app), job_id, LOOPBACK_ALLOWED, 5, 3) == "delivered"
    )  # redelivered message: no second POST
    ((headers, body),) = receiver.requests
    stamp, mac = (
        dict(part.split("=", 1) for part in headers["X-Inkwell-Signature"].split(","))["t"],
        headers["X-Inkwell-Signature"].split("v1=")[1],
    )
    assert hmac.compare_digest(mac, hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest())
    summary = json.loads(body)
    assert (
        summary["event"] == "job.finished"
        and summary["job"]["id"] == job_id
        and summary["job"]["status"] == "succeeded"
    )


def test_failing_receivers_are_retried_then_given_up(loopback_app: Flask, receiver: _Receiver) -> None:
    receiver.status = 503
    job_id, _ = _finished_job_with_callback(loopback_app, receiver.url)
    for _ in range(2):
        with pytest.raises(CallbackFailed):
            deliver_job_callback(_db(loopback_app), job_id, LOOPBACK_ALLOWED, 5, 3)
    assert deliver_job_callback(_db(loopback_app), job_id, LOOPBACK_ALLOWED, 5, 3) == "failed"
    assert len(receiver.requests) == 3
    with _db(loopback_app).session() as session:
        job = session.get(Job, job_id)
        assert job.callback_state == "failed" and job.callback_attempts == 3 and "503" in job.callback_error
    receiver.status = 302
    with pytest.raises(CallbackFailed, match="302"):
        deliver(receiver.url, b"{}", "s", LOOPBACK_ALLOWED, 5)


def test_names_that_resolve_to_denied_addresses_are_refused_at_delivery(receiver: _Receiver) -> None:
    loopback_denied = AddressPolicy(tuple(denied_networks("127.0.0.0/8,::1/128")), LOOPBACK_ALLOWED.allowed)
    with pytest.raises(CallbackRefused):
        deliver(receiver.url.replace("127.0.0.1", "localhost"), b"{}", "s", loopback_denied, 5)
    with pytest.raises(CallbackRefused, match="not a public address"):  # the default: no internal receivers
        deliver(receiver.url.replace("127.0.0.1", "localhost"), b"{}", "s", DEFAULT_DENIED, 5)
    assert receiver.requests == []


def test_unreachable_receivers_fail_within_the_timeout() -> None:
    import socket
    import time

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(CallbackFailed):
        deliver(f"http://127.0.0.1:{port}/", b"{}", "s", LOOPBACK_ALLOWED, 2)
    assert time.monotonic() - started < 5


# -- the sweeper: nothing accepted is lost when the broker is down --------------------------------


def test_jobs_accepted_while_the_broker_is_down_are_sent_by_the_sweeper(
    backend_settings: Settings, tmp_path: Path
) -> None:
    down = backend_settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    upgrade(down)
    app = create_app(down)
    response = api_client(app, ["submit"]).post("/api/v1/jobs", data=_files("yes", "ink"))
    assert response.status_code == 202, "accepted: the job and its files are committed even with no broker"
    db = _db(app)
    with db.session() as session:
        assert set(session.scalars(select(Page.queued_at))) == {None}
    working = make_celery(
        backend_settings.model_copy(update={"broker_url": f"sqla+sqlite:///{tmp_path / 'broker.db'}"})
    )
    assert sweep(db, working, stale_after=600).prepare == [], (
        "accepted a moment ago: its messages may still be on their way"
    )
    with db.session() as session:
        session.execute(update(Page).values(created_at=utcnow() - timedelta(hours=1)))
    report = sweep(db, working, stale_after=600)
    assert len(report.prepare) == 2
    assert sorted(_drain(working, QUEUE_PAGES)) == sorted(report.prepare)
    assert sweep(db, working, stale_after=600).prepare == [], "just sent: not sent again until stale"
    with db.session() as session:
        session.execute(update(Page).values(queued_at=utcnow() - timedelta(hours=1), status=PageStatus.PREPARED))
    assert len(sweep(db, working, stale_after=600).recognize) == 2
    assert len(_drain(working, QUEUE_LINES)) == 2


def test_purge_deletes_old_jobs_with_everything_under_them(app: Flask) -> None:
    client = api_client(app, ["submit"])
    old, new = (client.post("/api/v1/jobs", data=_files("x")).get_json()["id"] for _ in range(2))
    db = _db(app)
    with db.session() as session:
        session.get(Job, old).created_at = utcnow() - timedelta(days=40)
    assert purge(db, 0) == 0
    assert purge(db, 30) == 1
    with db.session() as session:
        assert session.get(Job, old) is None and session.get(Job, new) is not None
        assert session.scalar(select(func.count()).select_from(Upload)) == 1


# -- pages that keep killing their worker ----------------------------------------------------------


def test_a_page_that_keeps_killing_workers_fails_alone(database: Database, tiny_char_model: Path) -> None:
    from worker.recognizer import Recognizer

    with database.session() as session:
        job = create_job(
            session,
            [AcceptedFile(f"{t}.png", "image/png", line_png(t)) for t in ("yes", "ink", "Jane Doe")],
            "api",
            "line",
        )
        job_id, page_ids = job.id, [p.id for p in job.pages]
    limits = PageLimits(10**7, 150, max_attempts=3)
    for page_id in page_ids:
        assert prepare_page(database, page_id, limits, lambda image: [])
    # the third page was in two batches whose worker died (attempts counted, nothing stored)
    with database.session() as session:
        session.get(Page, page_ids[2]).attempts = 2
    batches: list[list[str]] = []
    charged: list[list[int]] = []  # every page's attempts while each model call runs
    real = Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=32)

    class Recording:
        name = real.name

        def recognize(self, images, capture=True):
            with database.session() as session:
                charged.append([session.get(Page, page_id).attempts for page_id in page_ids])
            results = real.recognize(images, capture)
            batches.append([r.text for r in results])
            return results

    recognize_pages(database, Recording(), page_ids, max_attempts=3)
    assert batches == [["yes", "ink"], ["Jane Doe"]], "the suspect page is read on its own, after the others"
    # only the pages being read carry an attempt: the suspect waiting for its turn is charged when its turn comes
    assert charged == [[1, 1, 2], [1, 1, 3]]
    with database.session() as session:
        session.get(Page, page_ids[2]).status = PageStatus.PREPARED
        session.get(Page, page_ids[2]).attempts = 3
    recognize_pages(database, Recording(), [page_ids[2]], max_attempts=3)
    with database.session() as session:
        page = session.get(Page, page_ids[2])
        assert page.status == PageStatus.FAILED and "stopped its worker 3 times" in page.error
        assert session.get(Job, job_id).status == JobStatus.PARTIAL
    with database.session() as session:
        queued = create_job(session, [AcceptedFile("a.png", "image/png", line_png("a"))], "api", "line").pages[0]
        queued.attempts = 3
        queued_id = queued.id
    assert not prepare_page(database, queued_id, limits, lambda image: [])
    with database.session() as session:
        assert "stopped its worker 3 times" in session.get(Page, queued_id).error


# -- readiness -----------------------------------------------------------------------------------


def test_readyz_needs_database_broker_and_a_worker_per_queue(app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"] == "ok" and checks["broker"] == "ok" and "no worker" in checks["worker:lines"]
    with _db(app).session() as session:
        session.add(WorkerHeartbeat(name="pages@host", queues="pages", seen_at=utcnow()))
        session.add(WorkerHeartbeat(name="lines@host", queues="lines", seen_at=utcnow()))
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ready"
    with _db(app).session() as session:
        session.execute(update(WorkerHeartbeat).values(seen_at=utcnow() - timedelta(minutes=5)))
    assert client.get("/readyz").status_code == 503
    settings = app.extensions["inkwell"]["settings"]
    _readyz_fails_when_work_waits_and_nothing_moves(app)
    broker_down = create_app(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
    assert broker_down.test_client().get("/readyz").get_json()["checks"]["broker"].startswith("unreachable")


# -- the database down ---------------------------------------------------------------------------


def test_the_api_answers_503_with_retry_after_while_the_database_is_down(tmp_path: Path) -> None:
    """No PostgreSQL answers on this port: every request that needs the database says so, as 503."""
    from tests.processes import free_port

    down = Settings(
        data_dir=tmp_path, secret_key="x", database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/inkwell"
    )
    client = create_app(down).test_client()
    for path in ("/api/v1/jobs", "/api/v1/jobs/abc", "/api/v1/search?q=x"):
        response = client.get(path, headers={"Authorization": "Bearer ink_anything"})
        assert response.status_code == 503, (path, response.status_code)
        assert (
            response.get_json()["error"]["code"] == "database_unavailable" and int(response.headers["Retry-After"]) > 0
        )
    page = client.get("/sign-in")
    assert page.status_code == 503 and page.headers["Retry-After"] and "database" in page.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # the web process itself is fine


def _readyz_fails_when_work_waits_and_nothing_moves(app: Flask) -> None:
    """Live heartbeats are not enough: a queue whose pages wait while none moves on is stalled."""
    client, db = app.test_client(), _db(app)
    with db.session() as session:
        session.execute(update(WorkerHeartbeat).values(seen_at=utcnow()))
    assert client.get("/readyz").status_code == 200
    job_id = api_client(app, ["submit"]).post("/api/v1/jobs", data=_files("yes", "ink")).get_json()["id"]
    long_ago = utcnow() - timedelta(minutes=10)
    with db.session() as session:
        first, second = session.scalars(select(Page).where(Page.job_id == job_id).order_by(Page.number)).all()
        first.status, first.queued_at = PageStatus.PREPARED, long_ago  # waiting to be read for 10 minutes
        second.status, second.queued_at = PageStatus.PREPARED, long_ago
    stalled = client.get("/readyz")
    assert stalled.status_code == 503 and stalled.get_json()["checks"]["progress:lines"].startswith("stalled")
    assert "progress:pages" not in stalled.get_json()["checks"]
    with db.session() as session:  # one page read a moment ago: the queue moves, it is only busy
        page = session.get(Page, first.id)
        page.status, page.finished_at = PageStatus.SUCCEEDED, utcnow()
    assert client.get("/readyz").status_code == 200
    with db.session() as session:
        session.execute(update(Page).values(status=PageStatus.QUEUED, queued_at=long_ago, finished_at=None))
    assert "progress:pages" in client.get("/readyz").get_json()["checks"]


def test_the_sweeper_sends_again_only_pages_whose_message_is_lost(
    database: Database, redis_url: str, tmp_path: Path
) -> None:
    """On Redis the sweeper looks in the queue and among delivered, unacknowledged messages: a
    page waiting there behind a backlog, however long, is not sent a second time."""
    from inkwell.broker_contents import _first_argument
    from inkwell.queue import TASK_PREPARE_PAGE, enqueue_pages

    celery = make_celery(Settings(data_dir=tmp_path, broker_url=redis_url))
    with database.session() as session:
        job = create_job(
            session, [AcceptedFile(f"{i}.png", "image/png", line_png("x")) for i in range(4)], "api", "line"
        )
        waiting, delivered, lost, prepared_lost = (page.id for page in job.pages)
    assert enqueue_pages(celery, [delivered, waiting, lost])
    with database.session() as session:
        session.execute(update(Page).values(queued_at=utcnow() - timedelta(hours=1)))
        session.get(Page, prepared_lost).status = PageStatus.PREPARED  # its "lines" message was never sent
    with celery.connection_for_write() as connection:
        client = connection.default_channel.client
        for raw in client.lrange(QUEUE_PAGES, 0, -1):  # "lost" loses its message (Redis restarted without it, say)
            if _first_argument(raw, TASK_PREPARE_PAGE) == lost:
                client.lrem(QUEUE_PAGES, 1, raw)
        consumer = connection.SimpleQueue(QUEUE_PAGES)  # a worker holds one message, not acknowledged yet
        held = consumer.get(timeout=5)
        assert held.payload[0] == [delivered]
        report = sweep(database, celery, stale_after=600)
        assert report.prepare == [lost] and report.recognize == [prepared_lost]
        assert sweep(database, celery, stale_after=600).prepare == [], "sent again a moment ago"
        held.ack()
        consumer.close()


def test_a_message_unacknowledged_long_past_its_visibility_timeout_counts_as_lost(
    database: Database, redis_url: str, tmp_path: Path
) -> None:
    """kombu gives an unacknowledged message back after the visibility timeout; one still held
    twice that long is stuck, not being worked on, and the sweeper sends its page again."""
    import time

    from inkwell.broker_contents import UNACKED_INDEX
    from inkwell.queue import enqueue_pages

    celery = make_celery(Settings(data_dir=tmp_path, broker_url=redis_url, broker_visibility_timeout=60))
    with database.session() as session:
        job = create_job(session, [AcceptedFile("0.png", "image/png", line_png("x"))], "api", "line")
        (page_id,) = (page.id for page in job.pages)
    assert enqueue_pages(celery, [page_id])
    with database.session() as session:
        session.execute(update(Page).values(queued_at=utcnow() - timedelta(hours=1)))
    with celery.connection_for_write() as connection:
        client = connection.default_channel.client
        consumer = connection.SimpleQueue(QUEUE_PAGES)  # a worker holds the message, not acknowledged yet
        held = consumer.get(timeout=5)
        assert sweep(database, celery, stale_after=600).prepare == [], "delivered a moment ago: being worked on"
        client.zadd(UNACKED_INDEX, {held.delivery_tag: time.time() - 121})  # as if delivered 2 timeouts ago
        assert sweep(database, celery, stale_after=600).prepare == [page_id]
        held.ack()
        consumer.close()
