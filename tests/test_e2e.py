"""End to end with real processes: gunicorn web server, Celery workers, a real broker and database.

Once on the embedded defaults (SQLite database, SQLite-backed broker) and once on Redis and
PostgreSQL, pages go in over HTTP and the test polls like a client until the job is done, then
checks the rows the workers wrote. The model is the tiny trained fixture, so the text is known.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.models import Job, Line, Upload
from tests.images import NOT_AN_IMAGE, declared_size_png, line_png, truncated_png
from tests.processes import Processes, create_token, free_port, wait_for_job, wait_until_up

pytestmark = pytest.mark.slow

TEXTS = ["hello world", "Jane Doe", "12/05/2024", "Paris 75001"]


def _environment(tmp_path: Path, model: Path, port: int, **extra: str) -> dict[str, str]:
    return {
        "INKWELL_DATA_DIR": str(tmp_path / "var"),
        "INKWELL_MODEL": str(model),
        "INKWELL_WEB_PORT": str(port),
        "INKWELL_WEB_WORKERS": "1",
        "INKWELL_PAGES_CONCURRENCY": "1",
        "INKWELL_LINES_FLUSH_EVERY": "4",
        "INKWELL_LINES_FLUSH_INTERVAL": "0.3",
        "INKWELL_MAX_FILE_BYTES": "200000",
        "INKWELL_LOG_LEVEL": "INFO",
        **extra,
    }


def _submit_and_check(base: str, settings: Settings, processes: Processes, auth: dict[str, str]) -> None:
    files = [("files", (f"line{i}.png", line_png(text), "image/png")) for i, text in enumerate(TEXTS)]
    # the tiny model reads whole line images: no line detection
    response = requests.post(f"{base}/api/v1/jobs", files=files, data={"layout": "line"}, headers=auth, timeout=30)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.headers["Location"] == f"/api/v1/jobs/{job_id}"
    body = wait_for_job(base, job_id, processes, auth)
    assert body["status"] == "succeeded", body
    assert [page["text"] for page in body["pages"]] == TEXTS
    assert body["progress"] == {"pages_total": 4, "pages_done": 4, "pages_failed": 0, "lines_total": 4, "lines_done": 4}
    text = requests.get(f"{base}/api/v1/jobs/{job_id}/result?format=txt", headers=auth, timeout=10).text
    assert text == "\n\f\n".join(TEXTS) + "\n"

    db = Database(settings)
    with db.session() as session:
        job = session.get(Job, job_id)
        lines = [line for page in job.pages for line in page.lines]
        assert [line.text for line in lines] == TEXTS
        assert all(line.attention and line.embedding and line.tokens for line in lines)
        assert session.scalar(select(func.count()).select_from(Line)) == 4
    db.engine.dispose()


def _bad_inputs_are_refused(base: str, settings: Settings, auth: dict[str, str]) -> None:
    db = Database(settings)
    with db.session() as session:
        before = (
            session.scalar(select(func.count()).select_from(Job)),
            session.scalar(select(func.count()).select_from(Upload)),
        )
    cases = [
        ([("files", ("x.png", NOT_AN_IMAGE, "image/png"))], 415),
        ([("files", ("x.png", truncated_png(), "image/png"))], 422),
        ([("files", ("x.png", b"", "image/png"))], 400),
        ([("files", ("x.png", declared_size_png(30000, 30000), "image/png"))], 413),
        ([("files", ("x.png", b"\x89PNG" + b"\x00" * 300_000, "image/png"))], 413),
        ([("note", (None, "no file"))], 400),
    ]
    for files, status in cases:
        response = requests.post(f"{base}/api/v1/jobs", files=files, headers=auth, timeout=30)
        assert response.status_code == status, response.text
        assert set(response.json()["error"]) == {"code", "message"}
    with db.session() as session:
        after = (
            session.scalar(select(func.count()).select_from(Job)),
            session.scalar(select(func.count()).select_from(Upload)),
        )
    db.engine.dispose()
    assert after == before
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200


def _run_separately(env: dict[str, str], tmp_path: Path, settings: Settings) -> None:
    processes = Processes(env, tmp_path)
    base = f"http://127.0.0.1:{env['INKWELL_WEB_PORT']}"
    try:
        processes.run("migrate")
        auth = create_token(processes)
        processes.start_service(base)
        assert requests.get(f"{base}/api/v1/jobs", timeout=10).status_code == 401
        _bad_inputs_are_refused(base, settings, auth)
        _submit_and_check(base, settings, processes, auth)
    finally:
        processes.stop_all()


def test_embedded_defaults_end_to_end(tmp_path: Path, tiny_char_model: Path) -> None:
    env = _environment(tmp_path, tiny_char_model, free_port())
    _run_separately(env, tmp_path, Settings(data_dir=tmp_path / "var"))


def test_redis_and_postgresql_end_to_end(
    tmp_path: Path, tiny_char_model: Path, redis_url: str, postgres_url: str
) -> None:
    env = _environment(
        tmp_path, tiny_char_model, free_port(), INKWELL_BROKER_URL=redis_url, INKWELL_DATABASE_URL=postgres_url
    )
    _run_separately(env, tmp_path, Settings(data_dir=tmp_path / "var", database_url=postgres_url, broker_url=redis_url))


def test_serve_runs_everything_and_stops_on_ctrl_c(tmp_path: Path, tiny_char_model: Path) -> None:
    """What `make run` runs: one command, migrations included, Ctrl-C (SIGINT) stops it all."""
    env = _environment(tmp_path, tiny_char_model, free_port())
    processes = Processes(env, tmp_path)
    base = f"http://127.0.0.1:{env['INKWELL_WEB_PORT']}"
    try:
        serve = processes.start("serve", "serve")
        wait_until_up(f"{base}/healthz", processes, timeout=120)
        auth = create_token(processes)
        response = requests.post(
            f"{base}/api/v1/jobs",
            files=[("files", ("a.png", line_png("Form 42"), "image/png"))],
            data={"layout": "line"},
            headers=auth,
            timeout=30,
        )
        body = wait_for_job(base, response.json()["id"], processes, auth)
        assert body["pages"][0]["text"] == "Form 42"
        started = time.monotonic()
        assert processes.stop("serve", signal.SIGINT, timeout=60) == 0
        assert time.monotonic() - started < 60
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{base}/healthz", timeout=2)
        assert serve.poll() is not None
    finally:
        processes.stop_all()
