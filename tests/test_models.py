"""Models and storage on both backends: round trips, cascades, idempotent line numbering."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from inkwell.arrays import pack_array, unpack_array
from inkwell.db import Database
from inkwell.jobs import AcceptedFile, create_job, refresh_job
from inkwell.models import Job, JobStatus, Line, LineImage, Page, PageFile, PageStatus, Upload
from inkwell.storage import line_images, put_line_image, put_page_image, upload_bytes


def _job(db: Database, pages: int = 2) -> str:
    with db.session() as session:
        job = create_job(
            session, [AcceptedFile(f"p{i}.png", "image/png", bytes([i]) * 10, ((5, 2),)) for i in range(pages)], "api"
        )
        return job.id


def test_job_pages_and_files_round_trip(database: Database) -> None:
    job_id = _job(database)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.QUEUED and job.page_count == 2 and job.layout == "page"
        assert [p.number for p in job.pages] == [1, 2]
        upload = job.pages[1].upload
        assert (upload.filename, upload.size, len(upload.sha256), upload.page_count) == ("p1.png", 10, 64, 1)
        assert upload_bytes(session, upload.id) == bytes([1]) * 10


def test_a_multi_page_file_is_stored_once_with_a_page_each(database: Database) -> None:
    with database.session() as session:
        job = create_job(
            session,
            [
                AcceptedFile("a.png", "image/png", b"a", ((10, 10),)),
                AcceptedFile("scan.pdf", "application/pdf", b"%PDF", ((100, 200), (100, 200), (300, 100))),
            ],
            "web",
            "page",
        )
        job_id = job.id
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.page_count == 4 and len(job.uploads) == 2
        assert [(p.number, p.upload.filename, p.source_index, p.width) for p in job.pages] == [
            (1, "a.png", 0, 10),
            (2, "scan.pdf", 0, 100),
            (3, "scan.pdf", 1, 100),
            (4, "scan.pdf", 2, 300),
        ]


def test_page_and_line_images_round_trip(database: Database) -> None:
    job_id = _job(database, 1)
    with database.session() as session:
        page = session.get(Job, job_id).pages[0]
        put_page_image(session, page, b"jpeg", "image/jpeg")
        put_page_image(session, page, b"jpeg2", "image/jpeg")  # replaced, not duplicated
        for number in (2, 1):
            line = Line(page_id=page.id, number=number, bbox=[0, 0, 1, 1])
            session.add(line)
            session.flush()
            put_line_image(session, line, f"png{number}".encode())
    with database.session() as session:
        page = session.get(Job, job_id).pages[0]
        assert session.scalar(select(func.count()).select_from(PageFile)) == 1
        assert [data for _, data in line_images(session, page.id)] == [b"png1", b"png2"]


def test_line_arrays_keep_shape_and_dtype(database: Database) -> None:
    job_id = _job(database, 1)
    attention = np.random.default_rng(0).random((7, 1, 30)).astype(np.float32)
    attention /= attention.sum(axis=(1, 2), keepdims=True)
    embedding = np.random.default_rng(1).random(256).astype(np.float32)
    with database.session() as session:
        page = session.get(Job, job_id).pages[0]
        session.add(
            Line(
                page_id=page.id,
                number=1,
                bbox=[0, 0, 5, 2],
                text="ab",
                confidence=0.9,
                tokens=[{"text": "a", "confidence": 0.8}, {"text": "b", "confidence": 0.95}],
                attention=pack_array(attention, "float16"),
                embedding=pack_array(embedding, "float32"),
            )
        )
    with database.session() as session:
        line = session.scalar(select(Line))
        restored = unpack_array(line.attention)
        assert restored.shape == (7, 1, 30) and restored.dtype == np.float16
        np.testing.assert_allclose(restored.sum(axis=(1, 2)), 1.0, atol=2e-3)
        np.testing.assert_array_equal(unpack_array(line.embedding), embedding)
        assert line.tokens[1] == {"text": "b", "confidence": 0.95}
        assert line.final_text == "ab"
        line.corrected_text = "AB"
        assert line.final_text == "AB"


def test_a_line_number_exists_once_per_page(database: Database) -> None:
    job_id = _job(database, 1)
    with pytest.raises(IntegrityError):
        with database.session() as session:
            page = session.get(Job, job_id).pages[0]
            session.add_all(
                [Line(page_id=page.id, number=1, bbox=[0, 0, 1, 1]), Line(page_id=page.id, number=1, bbox=[0, 0, 1, 1])]
            )


def test_deleting_a_job_removes_everything_under_it(database: Database) -> None:
    job_id = _job(database)
    with database.session() as session:
        page = session.get(Job, job_id).pages[0]
        line = Line(page_id=page.id, number=1, bbox=[0, 0, 1, 1])
        session.add(line)
        session.flush()
        put_line_image(session, line, b"png")
        put_page_image(session, page, b"jpeg", "image/jpeg")
    with database.session() as session:
        session.delete(session.get(Job, job_id))
    with database.session() as session:
        for table in (Upload, Page, PageFile, Line, LineImage):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_job_status_follows_its_pages(database: Database) -> None:
    job_id = _job(database, 3)
    with database.session() as session:
        job = session.get(Job, job_id)
        job.pages[0].status = PageStatus.SUCCEEDED
        refresh_job(session, job)
        assert job.status == JobStatus.PROCESSING and job.pages_done == 1
        job.pages[1].status = PageStatus.FAILED
        job.pages[2].status = PageStatus.SUCCEEDED
        refresh_job(session, job)
        assert job.status == JobStatus.PARTIAL and job.finished_at is not None
        assert "1 of 3" in job.error
