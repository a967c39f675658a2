"""The page pipeline as plain functions, on both databases with a real (tiny) model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from inkwell.arrays import unpack_array
from inkwell.db import Database
from inkwell.jobs import AcceptedFile, create_job
from inkwell.models import Job, JobStatus, Line, Page, PageFile, PageStatus
from tests.images import line_png
from worker.pipeline import prepare_page, recognize_pages
from worker.recognizer import Recognizer

MAX_PIXELS = 10_000_000


@pytest.fixture(scope="module")
def recognizer(tiny_char_model: Path) -> Recognizer:
    return Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=32, batch_size=4)


def _submit(db: Database, texts: list[str]) -> tuple[str, list[int]]:
    with db.session() as session:
        job = create_job(session, [AcceptedFile(f"{i}.png", "image/png", line_png(t)) for i, t in enumerate(texts)], "api")
        return job.id, [page.id for page in job.pages]


def _run(db: Database, recognizer: Recognizer, page_ids: list[int]) -> None:
    ready = [page_id for page_id in page_ids if prepare_page(db, page_id, MAX_PIXELS)]
    recognize_pages(db, recognizer, ready, MAX_PIXELS)


def test_pages_are_read_and_stored(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["hello world", "Jane Doe", "12/05/2024"])
    _run(database, recognizer, page_ids)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.SUCCEEDED and job.started_at and job.finished_at
        assert (job.pages_done, job.line_count, job.lines_done) == (3, 3, 3)
        assert job.model == recognizer.name
        texts = [page.lines[0].text for page in job.pages]
        assert texts == ["hello world", "Jane Doe", "12/05/2024"]
        line = job.pages[0].lines[0]
        attention = unpack_array(line.attention)
        assert attention.shape[0] == len(line.tokens) == len("hello world")
        np.testing.assert_allclose(attention.astype(np.float32).sum(axis=(1, 2)), 1.0, atol=5e-3)
        assert unpack_array(line.embedding).shape == (64,)
        page_embedding = unpack_array(job.pages[0].embedding)
        np.testing.assert_allclose(page_embedding, unpack_array(line.embedding))  # one line: mean = itself
        assert line.bbox == [0, 0, job.pages[0].width, job.pages[0].height]


def test_redelivered_messages_change_nothing(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["Form 42"])
    _run(database, recognizer, page_ids)
    _run(database, recognizer, page_ids)  # the same messages again, as after a crash
    recognize_pages(database, recognizer, page_ids + page_ids, MAX_PIXELS)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Line)) == 1
        job = session.get(Job, job_id)
        assert (job.status, job.pages_done, job.lines_done) == (JobStatus.SUCCEEDED, 1, 1)


def test_an_unreadable_page_fails_alone(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["yes", "ink"])
    with database.session() as session:  # damage the second page's stored bytes behind the API's back
        stored = session.scalar(select(PageFile).where(PageFile.page_id == page_ids[1]))
        stored.data = stored.data[:40]
    _run(database, recognizer, page_ids)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.PARTIAL
        good, bad = job.pages
        assert good.status == PageStatus.SUCCEEDED and good.lines[0].text == "yes"
        assert bad.status == PageStatus.FAILED and "cannot be decoded" in bad.error
        assert "1 of 2" in job.error


class _FailsOnWideLines:
    """The real recognizer, except that it raises on any batch holding a line wider than 80 px."""

    def __init__(self, real: Recognizer) -> None:
        self.real = real
        self.name = real.name

    def recognize(self, images, capture: bool = True):
        if any(image.width > 80 for image in images):
            raise RuntimeError("CUDA out of memory (injected)")
        return self.real.recognize(images, capture)


def test_a_model_failure_fails_only_its_page(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["ink", "Paris 75001", "yes"])
    ready = [page_id for page_id in page_ids if prepare_page(database, page_id, MAX_PIXELS)]
    recognize_pages(database, _FailsOnWideLines(recognizer), ready, MAX_PIXELS)
    with database.session() as session:
        pages = session.get(Job, job_id).pages
        assert [p.status for p in pages] == [PageStatus.SUCCEEDED, PageStatus.FAILED, PageStatus.SUCCEEDED]
        assert "out of memory" in pages[1].error
        assert [p.lines[0].text for p in (pages[0], pages[2])] == ["ink", "yes"]


def test_vanished_pages_are_skipped(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["yes"])
    assert prepare_page(database, page_ids[0], MAX_PIXELS)
    with database.session() as session:
        session.delete(session.get(Job, job_id))
    recognize_pages(database, recognizer, page_ids, MAX_PIXELS)
    assert not prepare_page(database, page_ids[0], MAX_PIXELS)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Page)) == 0


def test_transparent_and_16_bit_pages_decode(database: Database, recognizer: Recognizer) -> None:
    from tests.images import encode
    from tests.tiny_models import render_text_line

    rgba = render_text_line("ink").convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    grey16 = render_text_line("yes").convert("L").point(lambda v: v * 256, "I")
    with database.session() as session:
        job = create_job(session, [AcceptedFile("a.png", "image/png", encode(rgba)), AcceptedFile("b.png", "image/png", encode(grey16.convert("I;16")))], "api")
        job_id, page_ids = job.id, [p.id for p in job.pages]
    _run(database, recognizer, page_ids)
    with database.session() as session:
        assert [p.lines[0].text for p in session.get(Job, job_id).pages] == ["ink", "yes"]
