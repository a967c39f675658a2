"""The upload service on its own: no Flask, the database, settings and sender passed in."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.errors import ErrorCode, Refused
from inkwell.models import Job, Page
from inkwell.queue import QUEUE_PAGES, make_celery
from inkwell.submission import Submission, accept_submission
from tests.broker import drain
from tests.images import line_png


def _file(name: str, data: bytes) -> SimpleNamespace:
    return SimpleNamespace(filename=name, stream=io.BytesIO(data))


def test_a_submission_is_stored_then_its_pages_are_sent(database: Database, backend_settings: Settings) -> None:
    sender = make_celery(backend_settings)
    files = [_file(f"{i}.png", line_png(f"line {i}")) for i in range(2)]
    accepted = accept_submission(database, backend_settings, sender, Submission(files, "api", layout="line"))
    assert (accepted.pages, accepted.replayed) == (2, False)
    with database.session() as session:
        page_ids = list(session.scalars(select(Page.id).where(Page.job_id == accepted.job_id).order_by(Page.number)))
    assert [arguments[0] for _, arguments in drain(sender, QUEUE_PAGES)] == page_ids


def test_a_refused_submission_stores_and_sends_nothing(database: Database, backend_settings: Settings) -> None:
    sender = make_celery(backend_settings)
    files = [_file("good.png", line_png("fine")), _file("bad.png", b"not an image at all")]
    with pytest.raises(Refused) as refused:
        accept_submission(database, backend_settings, sender, Submission(files, "web", layout="line"))
    assert refused.value.code == ErrorCode.UNSUPPORTED_MEDIA_TYPE
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0
    assert drain(sender, QUEUE_PAGES) == []
