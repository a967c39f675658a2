"""Models and storage on both backends: round trips, cascades, idempotent line numbering."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from inkwell.arrays import pack_array, unpack_array
from inkwell.db import Database
from inkwell.jobs import AcceptedFile, create_job, refresh_job
from inkwell.models import Job, JobStatus, Line, Page, PageFile, PageStatus
from inkwell.storage import get_page_file


def _job(db: Database, pages: int = 2) -> str:
    with db.session() as session:
        job = create_job(session, [AcceptedFile(f"p{i}.png", "image/png", bytes([i]) * 10, 5, 2) for i in range(pages)], "api")
        return job.id


def test_job_pages_and_files_round_trip(database: Database) -> None:
    job_id = _job(database)
    with database.session() as session:
        job = session.get(Job, job_id)
        assert job.status == JobStatus.QUEUED and job.page_count == 2
        assert [p.number for p in job.pages] == [1, 2]
        stored = get_page_file(session, job.pages[1].id)
        assert stored.data == bytes([1]) * 10 and stored.size == 10 and len(stored.sha256) == 64


def test_line_arrays_keep_shape_and_dtype(database: Database) -> None:
    job_id = _job(database, 1)
    attention = np.random.default_rng(0).random((7, 1, 30)).astype(np.float32)
    attention /= attention.sum(axis=(1, 2), keepdims=True)
    embedding = np.random.default_rng(1).random(256).astype(np.float32)
    with database.session() as session:
        page = session.get(Job, job_id).pages[0]
        session.add(Line(page_id=page.id, number=1, bbox=[0, 0, 5, 2], text="ab", confidence=0.9,
                         tokens=[{"text": "a", "confidence": 0.8}, {"text": "b", "confidence": 0.95}],
                         attention=pack_array(attention, "float16"), embedding=pack_array(embedding, "float32")))
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
            session.add_all([Line(page_id=page.id, number=1, bbox=[0, 0, 1, 1]), Line(page_id=page.id, number=1, bbox=[0, 0, 1, 1])])


def test_deleting_a_job_removes_everything_under_it(database: Database) -> None:
    job_id = _job(database)
    with database.session() as session:
        page = session.get(Job, job_id).pages[0]
        session.add(Line(page_id=page.id, number=1, bbox=[0, 0, 1, 1]))
    with database.session() as session:
        session.delete(session.get(Job, job_id))
    with database.session() as session:
        for table in (Page, PageFile, Line):
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
