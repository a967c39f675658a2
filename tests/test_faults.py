"""Fault injection with real processes, a real Redis and a real PostgreSQL: workers killed with
SIGKILL mid-batch, Redis and PostgreSQL restarted mid-job, 500 pages in the queue, and a page
that kills its worker every time (as the kernel's out-of-memory killer would). Every accepted
page must end read exactly once (or, for the killer page, failed with its reason)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests
from PIL import Image
from sqlalchemy import create_engine, func, select, text

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.models import Line, Page, PageStatus
from tests.images import encode, line_png
from tests.processes import Processes, create_token, free_port, wait_until_up
from tests.services import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.slow

WORDS = ("yes", "ink", "Jane Doe", "Form 42", "hello world", "Paris 75001", "total 9.50", "12/05/2024")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory):
    server = PrivatePostgres(tmp_path_factory.mktemp("postgres"))
    server.start()
    yield server
    server.remove()


class Deployment:
    """Web server and workers on the private Redis and PostgreSQL, with short recovery timings."""

    def __init__(
        self, folder: Path, model: Path, redis_server: PrivateRedis, postgres_server: PrivatePostgres, **extra: str
    ) -> None:
        name = f"faults_{uuid.uuid4().hex[:8]}"
        admin = create_engine(postgres_server.url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.database_url = postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            "INKWELL_DATA_DIR": str(folder / "var"),
            "INKWELL_MODEL": str(model),
            "INKWELL_WEB_PORT": str(self.port),
            "INKWELL_DATABASE_URL": self.database_url,
            "INKWELL_BROKER_URL": redis_server.url,
            "INKWELL_WEB_WORKERS": "2",
            "INKWELL_PAGES_CONCURRENCY": "2",
            "INKWELL_LINES_FLUSH_EVERY": "8",
            "INKWELL_LINES_FLUSH_INTERVAL": "0.3",
            "INKWELL_BROKER_VISIBILITY_TIMEOUT": "20",
            "INKWELL_STALE_AFTER_SECONDS": "20",
            "INKWELL_SWEEP_INTERVAL_SECONDS": "5",
            "INKWELL_MAX_PAGES_PER_JOB": "600",
            "INKWELL_MAX_FILES_PER_JOB": "600",
            **extra,
        }
        self.processes = Processes(env, folder)
        self.processes.run("migrate")
        self.auth = create_token(self.processes)
        self.settings = Settings(data_dir=folder / "var", database_url=self.database_url, broker_url=redis_server.url)

    def start(self, *names: str) -> None:
        commands = {"web": ("web",), "pages": ("worker", "-Q", "pages", "--beat"), "lines": ("worker", "-Q", "lines")}
        for name in names or commands:
            self.processes.start(name, *commands[name])
        if "web" in (names or commands):
            wait_until_up(f"{self.base}/healthz", self.processes)

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool children, as a crash or the OOM killer would."""
        child = self.processes.children.pop(name)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()

    def kill_pool_children(self, name: str) -> int:
        main = self.processes.children[name].pid
        killed = 0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if parent == main:
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
        return killed

    def submit(self, files: list[tuple[str, bytes]]) -> str:
        response = requests.post(
            f"{self.base}/api/v1/jobs",
            files=[("files", f) for f in files],
            data={"layout": "line"},
            headers=self.auth,
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return response.json()["id"]

    def counts(self) -> dict[str, int]:
        db = Database(self.settings)
        try:
            with db.session() as session:
                by_status = dict(session.execute(select(Page.status, func.count()).group_by(Page.status)).all())
                lines = session.scalar(select(func.count()).select_from(Line))
                read = session.scalar(select(func.count()).select_from(Line).where(Line.text.is_not(None)))
                redelivered = session.scalar(select(func.count()).select_from(Page).where(Page.attempts > 1))
        finally:
            db.engine.dispose()
        return {
            "pages": sum(by_status.values()),
            **{s.value: by_status.get(s, 0) for s in PageStatus},
            "lines": lines,
            "read_lines": read,
            "pages_retried": redelivered,
        }

    def wait_finished(self, job_ids: list[str], timeout: float = 300) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = []
            try:
                for job_id in job_ids:
                    bodies.append(
                        requests.get(f"{self.base}/api/v1/jobs/{job_id}", headers=self.auth, timeout=10).json()
                    )
            except (requests.RequestException, ValueError):
                time.sleep(1)
                continue
            if all(b.get("status") in ("succeeded", "failed", "partial") for b in bodies):
                return bodies
            time.sleep(0.5)
        raise AssertionError(f"jobs did not finish: {self.counts()}\n{self.processes.logs()}")

    def close(self) -> None:
        self.processes.stop_all()

    def __enter__(self) -> Deployment:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _pages(count: int, offset: int = 0) -> list[tuple[str, bytes]]:
    return [(f"p{offset + i}.png", line_png(WORDS[(offset + i) % len(WORDS)])) for i in range(count)]


def _assert_each_page_read_once(deployment: Deployment, pages: int) -> dict[str, int]:
    counts = deployment.counts()
    assert counts["pages"] == pages and counts["succeeded"] == pages, counts
    assert counts["lines"] == pages and counts["read_lines"] == pages, f"one line per page, none twice: {counts}"
    db = Database(deployment.settings)
    with db.session() as session:
        duplicates = session.execute(select(Line.page_id).group_by(Line.page_id).having(func.count() > 1)).all()
        texts = dict(session.execute(select(Page.number, Line.text).join(Line, Line.page_id == Page.id)).all())
    db.engine.dispose()
    assert duplicates == []
    assert all(texts[n] == WORDS[(n - 1) % len(WORDS)] for n in texts), "every page got its own text"
    return counts


def test_workers_killed_mid_batch_lose_and_duplicate_nothing(
    tmp_path, tiny_char_model, redis_server, postgres_server
) -> None:
    with Deployment(tmp_path, tiny_char_model, redis_server, postgres_server) as deployment:
        job_id = deployment.submit(_pages(160))
        kills = 0
        for round_ in range(3):
            # wait for the model worker to be busy with a batch, then kill it, pool and all
            deadline = time.monotonic() + 60
            while deployment.counts()["prepared"] < 8 and time.monotonic() < deadline:
                time.sleep(0.1)
            deployment.kill("lines")
            kills += 1
            if round_ == 1:
                deployment.kill("pages")
                kills += 1
                deployment.start("pages")
            time.sleep(0.5)
            deployment.start("lines")
        (body,) = deployment.wait_finished([job_id])
        assert body["status"] == "succeeded", body
        counts = _assert_each_page_read_once(deployment, 160)
        print(f"\n{kills} workers SIGKILLed mid-work: {counts}")


def test_redis_and_postgresql_restarts_mid_job(tmp_path, tiny_char_model, redis_server, postgres_server) -> None:
    with Deployment(tmp_path, tiny_char_model, redis_server, postgres_server) as deployment:
        job_id = deployment.submit(_pages(120))
        time.sleep(1.0)
        redis_server.restart(down_seconds=2)
        time.sleep(1.0)
        postgres_server.restart(down_seconds=2)
        (body,) = deployment.wait_finished([job_id])
        assert body["status"] == "succeeded", body
        counts = _assert_each_page_read_once(deployment, 120)
        print(f"\nRedis and PostgreSQL restarted mid-job: {counts}")
        assert requests.get(f"{deployment.base}/healthz", timeout=5).status_code == 200


def test_five_hundred_pages_in_the_queue(tmp_path, tiny_char_model, redis_server, postgres_server) -> None:
    with Deployment(tmp_path, tiny_char_model, redis_server, postgres_server) as deployment:
        started = time.monotonic()
        job_ids = [deployment.submit(_pages(100, offset=100 * k)) for k in range(5)]
        bodies = deployment.wait_finished(job_ids, timeout=600)
        assert {b["status"] for b in bodies} == {"succeeded"}
        counts = deployment.counts()
        assert counts["succeeded"] == 500 and counts["lines"] == 500, counts
        print(f"\n500 pages through Redis and PostgreSQL in {time.monotonic() - started:.0f} s: {counts}")


def test_a_page_that_kills_its_worker_fails_alone(tmp_path, tiny_char_model, redis_server, postgres_server) -> None:
    # One pool process, so that killing the pool's children kills only the process working on the
    # giant page, as the OOM killer would: with two, a neighbour page in the other process was
    # sometimes killed with it three times and failed too.
    with Deployment(
        tmp_path,
        tiny_char_model,
        redis_server,
        postgres_server,
        INKWELL_MAX_PAGE_ATTEMPTS="3",
        INKWELL_PAGES_CONCURRENCY="1",
    ) as deployment:
        giant = encode(Image.new("L", (7500, 7500), 255))  # 56 Mpx: within the limits, slow to process
        job_id = deployment.submit(_pages(3) + [("giant.png", giant)] + _pages(3, offset=3))
        db = Database(deployment.settings)
        kills, seen = 0, 0
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            with db.session() as session:
                page = session.scalar(select(Page).where(Page.job_id == job_id, Page.number == 4))
                status, attempts = page.status, page.attempts
            if status.finished:
                break
            # the page is being worked on (its attempt is counted): kill that work, up to the limit
            if status == PageStatus.QUEUED and seen < attempts <= 3:
                seen = attempts
                kills += deployment.kill_pool_children("pages")  # the OOM killer takes the process working on it
            time.sleep(0.05)
        db.engine.dispose()
        (body,) = deployment.wait_finished([job_id])
        giant_page = body["pages"][3]
        assert body["status"] == "partial" and giant_page["status"] == "failed", body
        assert "stopped its worker 3 times" in giant_page["error"]
        assert [p["text"] for i, p in enumerate(body["pages"]) if i != 3] == [
            WORDS[i % len(WORDS)] for i in (0, 1, 2, 3, 4, 5)
        ]
        print(f"\nthe page that kept being killed ({kills} kills) failed alone: {giant_page['error']}")


def _charged(db: Database, job_id: str) -> dict[int, int]:
    """Attempts of the pages charged for a model call that has not stored them yet."""
    with db.session() as session:
        return dict(
            session.execute(
                select(Page.number, Page.attempts).where(
                    Page.job_id == job_id, Page.status == PageStatus.PREPARED, Page.attempts > 0
                )
            ).all()
        )


def test_a_batch_killed_three_times_is_requeued_without_a_restart(
    tmp_path, tiny_char_model, redis_server, postgres_server
) -> None:
    """SIGKILL the lines worker's pool process while it reads a batch, three times, and never
    restart the worker: its messages come back by themselves (not by Redis's visibility timeout or
    the sweeper, both set far out of reach here), every page is read, and only the pages that
    were being read at a kill carry an attempt for it."""
    far = "3600"
    with Deployment(
        tmp_path,
        tiny_char_model,
        redis_server,
        postgres_server,
        INKWELL_MAX_PAGE_ATTEMPTS="4",
        INKWELL_BROKER_VISIBILITY_TIMEOUT=far,
        INKWELL_STALE_AFTER_SECONDS=far,
    ) as deployment:
        lines_worker = deployment.processes.children["lines"]
        job_id = deployment.submit(_pages(120))
        db = Database(deployment.settings)
        exposed: dict[int, int] = {}  # page number -> kills it was being read in
        kills = 0
        deadline = time.monotonic() + 240
        while kills < 3 and time.monotonic() < deadline:
            # a page charged since the last kill and not stored yet is in the model call now
            if not any(attempts > exposed.get(number, 0) for number, attempts in _charged(db, job_id).items()):
                time.sleep(0.002)
                continue
            deployment.kill_pool_children("lines")
            hit = [number for number, attempts in _charged(db, job_id).items() if attempts > exposed.get(number, 0)]
            if hit:  # charged and never stored: their read died with the process
                kills += 1
                for number in hit:
                    exposed[number] = exposed.get(number, 0) + 1
        assert kills == 3, f"could not catch a batch being read three times: {deployment.counts()}"
        (body,) = deployment.wait_finished([job_id], timeout=240)
        assert lines_worker.poll() is None and deployment.processes.children["lines"] is lines_worker, "never restarted"
        assert body["status"] == "succeeded", body
        counts = _assert_each_page_read_once(deployment, 120)
        with db.session() as session:
            attempts = dict(session.execute(select(Page.number, Page.attempts).where(Page.job_id == job_id)).all())
        db.engine.dispose()
        wrongly_charged = {n: a for n, a in attempts.items() if a != 1 + exposed.get(n, 0)}
        assert wrongly_charged == {}, (
            f"attempts must be the kills a page was being read in, plus its last read: {wrongly_charged} (exposed "
            f"{exposed})"
        )
        print(f"\n3 batch kills without restart, pages exposed {exposed}: {counts}")


def _task_runs(deployment: Deployment, worker: str, task: str) -> int:
    log = (deployment.processes.log_dir / f"{worker}.log").read_text()
    return sum(1 for line in log.splitlines() if f"Task {task}[" in line and "succeeded" in line)


def test_a_backlog_is_prepared_once_while_the_sweeper_runs(
    tmp_path, tiny_char_model, redis_server, postgres_server
) -> None:
    """Pages that wait behind a backlog longer than the stale limit are still in the broker: the
    sweeper (on its own queue, so it does run meanwhile) sends none of them again."""
    # Short, so that the backlog outlasts it three times over even on a fast machine (150 pages took
    # 5.8 s on a 2-core Xeon with AVX-512, where a limit of 3 s left the check below short).
    stale_after_s = 1
    with Deployment(
        tmp_path,
        tiny_char_model,
        redis_server,
        postgres_server,
        INKWELL_PAGES_CONCURRENCY="1",
        INKWELL_STALE_AFTER_SECONDS=str(stale_after_s),
        INKWELL_SWEEP_INTERVAL_SECONDS="1",
    ) as deployment:
        started = time.monotonic()
        job_id = deployment.submit(_pages(150))
        (body,) = deployment.wait_finished([job_id], timeout=400)
        took = time.monotonic() - started
        assert body["status"] == "succeeded", body
        _assert_each_page_read_once(deployment, 150)
        sweeps = _task_runs(deployment, "pages", "inkwell.sweep")
        assert took > 3 * stale_after_s and sweeps >= 3, (
            f"the backlog must outlast the stale limit with the sweeper running ({took:.0f} s, {sweeps} sweeps)"
        )
        prepare_runs = _task_runs(deployment, "pages", "inkwell.prepare_page")
        assert prepare_runs == 150, f"{prepare_runs} prepare runs for 150 pages"
        print(f"\n150 pages in {took:.0f} s, {sweeps} sweeps meanwhile, {prepare_runs} prepare runs")


def test_a_database_outage_answers_503_then_completes_without_the_sweeper(
    tmp_path, tiny_char_model, redis_server, postgres_server
) -> None:
    """PostgreSQL stopped mid-job: the API answers 503 with Retry-After, tasks retry with backoff,
    and the job completes once it is back, long before the sweeper (set an hour out) would act."""
    with Deployment(
        tmp_path,
        tiny_char_model,
        redis_server,
        postgres_server,
        INKWELL_STALE_AFTER_SECONDS="3600",
        INKWELL_PAGES_CONCURRENCY="1",
    ) as deployment:
        job_id = deployment.submit(_pages(80))
        deadline = time.monotonic() + 60
        while deployment.counts()["succeeded"] < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        postgres_server.stop()
        try:
            time.sleep(1)
            down = requests.get(f"{deployment.base}/api/v1/jobs/{job_id}", headers=deployment.auth, timeout=30)
            assert down.status_code == 503 and int(down.headers["Retry-After"]) > 0, down.text
            assert down.json()["error"]["code"] == "database_unavailable"
            time.sleep(5)
        finally:
            postgres_server.start()
        started = time.monotonic()
        (body,) = deployment.wait_finished([job_id], timeout=240)
        assert body["status"] == "succeeded", body
        counts = _assert_each_page_read_once(deployment, 80)
        print(f"\ndatabase down 6 s mid-job; finished {time.monotonic() - started:.0f} s after it came back: {counts}")
