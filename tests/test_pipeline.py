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
from inkwell.models import Job, JobStatus, Line, LineImage, Page, PageFile, PageStatus
from tests.images import line_png
from worker.line_finder import LineFinder
from worker.pipeline import PageLimits, prepare_page, recognize_pages
from worker.recognizer import Recognizer

LIMITS = PageLimits(max_pixels=10_000_000, dpi=150)


def _no_detection(image):
    raise AssertionError("layout 'line' must not run line detection")


@pytest.fixture(scope="module")
def recognizer(tiny_char_model: Path) -> Recognizer:
    return Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=32, batch_size=4)


def _submit(db: Database, texts: list[str], layout: str = "line") -> tuple[str, list[int]]:
    with db.session() as session:
        job = create_job(
            session, [AcceptedFile(f"{i}.png", "image/png", line_png(t)) for i, t in enumerate(texts)], "api", layout
        )
        return job.id, [page.id for page in job.pages]


def _prepare(db: Database, page_id: int, find=_no_detection) -> bool:
    return prepare_page(db, page_id, LIMITS, find)


def _run(db: Database, recognizer: Recognizer, page_ids: list[int], find=_no_detection) -> None:
    ready = [page_id for page_id in page_ids if _prepare(db, page_id, find)]
    recognize_pages(db, recognizer, ready)


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
    recognize_pages(database, recognizer, page_ids + page_ids)
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Line)) == 1
        job = session.get(Job, job_id)
        assert (job.status, job.pages_done, job.lines_done) == (JobStatus.SUCCEEDED, 1, 1)


def test_an_unreadable_page_fails_alone(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["yes", "ink"])
    with database.session() as session:  # damage the second page's stored bytes behind the API's back
        upload = session.get(Page, page_ids[1]).upload
        upload.data = line_png("ink")[:40]
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
    ready = [page_id for page_id in page_ids if _prepare(database, page_id)]
    recognize_pages(database, _FailsOnWideLines(recognizer), ready)
    with database.session() as session:
        pages = session.get(Job, job_id).pages
        assert [p.status for p in pages] == [PageStatus.SUCCEEDED, PageStatus.FAILED, PageStatus.SUCCEEDED]
        assert "out of memory" in pages[1].error
        assert [p.lines[0].text for p in (pages[0], pages[2])] == ["ink", "yes"]


def test_vanished_pages_are_skipped(database: Database, recognizer: Recognizer) -> None:
    job_id, page_ids = _submit(database, ["yes"])
    assert _prepare(database, page_ids[0])
    with database.session() as session:
        session.delete(session.get(Job, job_id))
    recognize_pages(database, recognizer, page_ids)
    assert not _prepare(database, page_ids[0])
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Page)) == 0


def test_transparent_and_16_bit_pages_decode(database: Database, recognizer: Recognizer) -> None:
    from tests.images import encode
    from tests.tiny_models import render_text_line

    rgba = render_text_line("ink").convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255))
    grey16 = render_text_line("yes").convert("L").point(lambda v: v * 256, "I")
    with database.session() as session:
        job = create_job(
            session,
            [
                AcceptedFile("a.png", "image/png", encode(rgba)),
                AcceptedFile("b.png", "image/png", encode(grey16.convert("I;16"))),
            ],
            "api",
            "line",
        )
        job_id, page_ids = job.id, [p.id for p in job.pages]
    _run(database, recognizer, page_ids)
    with database.session() as session:
        assert [p.lines[0].text for p in session.get(Job, job_id).pages] == ["ink", "yes"]


@pytest.fixture(scope="module")
def line_finder() -> LineFinder:
    return LineFinder()


def test_pages_of_a_pdf_and_a_tiff_are_rasterised_and_cut_into_lines(
    database: Database, recognizer: Recognizer, line_finder: LineFinder
) -> None:
    from tests.documents import image_pdf, image_tiff, pdf_with_a_broken_page
    from tests.forms import handwriting_fonts, make_form

    fonts = handwriting_fonts()
    forms = [make_form(seed, fonts) for seed in (11, 12)]
    scans = [f.image for f in forms]
    files = [
        AcceptedFile("scan.pdf", "application/pdf", image_pdf(scans, resolution=150), ((1240, 1754),) * 2),
        AcceptedFile("fax.tif", "image/tiff", image_tiff([scans[1]], mode="1", compression="group4"), ((1240, 1754),)),
        AcceptedFile("odd.pdf", "application/pdf", pdf_with_a_broken_page([scans[0]]), ((1240, 1754), (1240, 1754))),
    ]
    with database.session() as session:
        job = create_job(session, files, "api", "page")
        job_id, page_ids = job.id, [p.id for p in job.pages]
    _run(database, recognizer, page_ids, line_finder.find)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.SUCCEEDED, [p.error for p in job.pages]
        pdf_page, _, fax_page, _, garbage_page = job.pages
        expected = len(forms[0].lines)
        assert len(pdf_page.lines) == expected, "every line of the form is found"
        assert (
            abs(pdf_page.width - 1240) <= 1 and abs(pdf_page.height - 1754) <= 1
        )  # the 150-dpi scan, rendered at 150 dpi
        assert len(fax_page.lines) >= expected - 2  # a 1-bit fax loses detail
        assert garbage_page.lines == [] and garbage_page.status == PageStatus.SUCCEEDED
        first = pdf_page.lines[0]
        assert first.polygon and len(first.polygon) == 4 and 0 < first.detection_confidence <= 1
        assert first.text is not None and first.tokens is not None
        assert session.scalar(select(func.count()).select_from(LineImage)) == sum(len(p.lines) for p in job.pages)
        assert session.scalar(select(func.count()).select_from(PageFile)) == 5  # an upright image per page
