"""The jobs list a clerk works from: file names, pages, submitter, times; filtering by file name;
each caller sees only its own jobs."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from inkwell.config import Settings
from inkwell.migrate import upgrade
from inkwell.models import Job, JobStatus
from tests.clients import api_client, signed_in
from tests.images import line_png
from webui import create_app


@pytest.fixture
def app(backend_settings: Settings) -> Flask:
    upgrade(backend_settings)
    return create_app(backend_settings)


def test_jobs_show_files_pages_and_submitter_and_filter_by_file_name(app: Flask) -> None:
    clerk = api_client(app, ["submit", "read"])
    other = api_client(app, ["submit", "read"])
    first = clerk.post(
        "/api/v1/jobs",
        data={
            "files": [(io.BytesIO(line_png("a")), "Intake_2026-11.png"), (io.BytesIO(line_png("b")), "scan 100%.png")]
        },
    ).get_json()["id"]
    second = clerk.post("/api/v1/jobs", data={"files": [(io.BytesIO(line_png("c")), "claims.png")]}).get_json()["id"]
    other.post("/api/v1/jobs", data={"files": [(io.BytesIO(line_png("d")), "intake-other.png")]})

    jobs = clerk.get("/api/v1/jobs").get_json()["jobs"]
    assert [job["id"] for job in jobs] == [second, first]
    assert jobs[1]["files"] == ["Intake_2026-11.png", "scan 100%.png"] and jobs[1]["progress"]["pages_total"] == 2
    assert jobs[1]["submitter"].startswith("token:test-") and jobs[1]["finished_at"] is None
    # part of a name, any case; % and _ are plain characters, not wildcards
    assert [job["id"] for job in clerk.get("/api/v1/jobs?file=INTAKE").get_json()["jobs"]] == [first]
    assert [job["id"] for job in clerk.get("/api/v1/jobs?file=100%25").get_json()["jobs"]] == [first]
    assert (
        clerk.get("/api/v1/jobs?file=a_e").get_json()["jobs"] == []
        and clerk.get("/api/v1/jobs?file=%25").get_json()["jobs"][0]["id"] == first
    )
    assert [job["id"] for job in clerk.get("/api/v1/jobs?file=claims").get_json()["jobs"]] == [second]

    # a reviewer in the browser sees every job, with who sent it
    browser = signed_in(app)
    names = {
        tuple(job["files"]): job["submitter"] for job in browser.get("/api/v1/jobs?file=intake").get_json()["jobs"]
    }
    assert set(names) == {("Intake_2026-11.png", "scan 100%.png"), ("intake-other.png",)}


def test_the_job_page_links_every_export_only_once_the_job_has_finished(app: Flask) -> None:
    browser = signed_in(app)
    clerk = api_client(app, ["submit", "read"])
    job_id = clerk.post("/api/v1/jobs", data={"files": [(io.BytesIO(line_png("a")), "a.png")]}).get_json()["id"]
    html = browser.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert 'id="downloads" hidden' in html  # still queued: no result to download yet
    for fmt in ("txt", "json", "csv", "alto", "pagexml", "fields"):
        assert f"format={fmt}" in html  # revealed by job.js when the job finishes (fields only when there are fields)
    with app.extensions["inkwell"]["database"].session() as session:
        session.get(Job, job_id).status = JobStatus.SUCCEEDED
    assert 'id="downloads" hidden' not in browser.get(f"/jobs/{job_id}").get_data(as_text=True)
