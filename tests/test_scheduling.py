"""Fair scheduling: a job keeps only a few pages on the 'pages' queue, so a small job submitted
behind a large one is next in line within a few pages. Checked on a real broker queue, by the
order of the messages, not by time."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.migrate import upgrade
from inkwell.models import Page, PageStatus, utcnow
from inkwell.queue import QUEUE_PAGES
from inkwell.scheduling import send_next_pages_of_page
from inkwell.sweeper import sweep
from tests.broker import drain
from tests.clients import api_client
from tests.images import line_png
from webui import create_app

WINDOW = 3


@pytest.fixture
def app(backend_settings: Settings) -> Flask:
    settings = backend_settings.model_copy(update={"pages_in_flight_per_job": WINDOW})
    upgrade(settings)
    return create_app(settings)


def _submit(app: Flask, pages: int) -> str:
    files = {"files": [(io.BytesIO(line_png(f"page {i}")), f"{i}.png") for i in range(pages)], "layout": "line"}
    response = api_client(app, ["submit"]).post("/api/v1/jobs", data=files)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["id"]


def _pages(db: Database, job_id: str) -> list[int]:
    with db.session() as session:
        return list(session.scalars(select(Page.id).where(Page.job_id == job_id).order_by(Page.number)))


def _queue(app: Flask) -> list[int]:
    return [arguments[0] for _, arguments in drain(app.extensions["inkwell"]["celery"], QUEUE_PAGES)]


def test_a_small_job_is_queued_right_behind_a_large_jobs_first_pages(app: Flask) -> None:
    db: Database = app.extensions["inkwell"]["database"]
    large = _pages(db, _submit(app, 20))
    small = _pages(db, _submit(app, 1))
    queue = _queue(app)
    assert queue == large[:WINDOW] + small, "the one-page job waits behind 3 pages, not 20"

    # a worker finishes the large job's pages one by one: each sends the next, never more
    for done in large[:WINDOW]:
        with db.session() as session:
            session.get(Page, done).status = PageStatus.PREPARED
        assert send_next_pages_of_page(db, app.extensions["inkwell"]["celery"], done, WINDOW) == [
            large[large.index(done) + WINDOW]
        ]
    assert _queue(app) == large[WINDOW : 2 * WINDOW]
    # a page whose turn came is not sent twice, and the window is never overfilled
    assert send_next_pages_of_page(db, app.extensions["inkwell"]["celery"], large[0], WINDOW) == []


def test_the_sweeper_sends_never_sent_pages_one_window_per_job(app: Flask) -> None:
    db: Database = app.extensions["inkwell"]["database"]
    job = _submit(app, 8)
    pages = _pages(db, job)
    _queue(app)  # the first window, sent at submission, is lost (say the broker restarted empty)
    with db.session() as session:  # ... and the submission could not send the rest either, an hour ago
        for page in session.scalars(select(Page).where(Page.job_id == job)):
            page.queued_at = None
            page.created_at = utcnow() - timedelta(hours=1)
    report = sweep(db, app.extensions["inkwell"]["celery"], stale_after=600, window=WINDOW)
    assert report.prepare == pages[:WINDOW]
    assert _queue(app) == pages[:WINDOW]
    assert sweep(db, app.extensions["inkwell"]["celery"], stale_after=600, window=WINDOW).prepare == [], (
        "the window is full"
    )
