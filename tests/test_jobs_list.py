"""The jobs list a clerk works from: file names, pages, submitter, times; filtering by file name;
each caller sees only its own jobs."""

from __future__ import annotations

import io

import pytest
from flask import Flask

from inkwell.config import Settings
from inkwell.migrate import upgrade
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
    first = clerk.post("/api/v1/jobs", data={"files": [(io.BytesIO(line_png("a")), "Intake_2026-11.png"),
                                                       (io.BytesIO(line_png("b")), "scan 100%.png")]}).get_json()["id"]
    second = clerk.post("/api/v1/jobs", data={"files": [(io.BytesIO(line_png("c")), "claims.png")]}).get_json()["id"]
    other.post("/api/v1/jobs", data={"files": [(io.BytesIO(line_png("d")), "intake-other.png")]})

    jobs = clerk.get("/api/v1/jobs").get_json()["jobs"]
    assert [job["id"] for job in jobs] == [second, first]
    assert jobs[1]["files"] == ["Intake_2026-11.png", "scan 100%.png"] and jobs[1]["progress"]["pages_total"] == 2
    assert jobs[1]["submitter"].startswith("token:test-") and jobs[1]["finished_at"] is None
    # part of a name, any case; % and _ are plain characters, not wildcards
    assert [job["id"] for job in clerk.get("/api/v1/jobs?file=INTAKE").get_json()["jobs"]] == [first]
    assert [job["id"] for job in clerk.get("/api/v1/jobs?file=100%25").get_json()["jobs"]] == [first]
    assert clerk.get("/api/v1/jobs?file=a_e").get_json()["jobs"] == [] and clerk.get("/api/v1/jobs?file=%25").get_json()["jobs"][0]["id"] == first
    assert [job["id"] for job in clerk.get("/api/v1/jobs?file=claims").get_json()["jobs"]] == [second]

    # a reviewer in the browser sees every job, with who sent it
    browser = signed_in(app)
    names = {tuple(job["files"]): job["submitter"] for job in browser.get("/api/v1/jobs?file=intake").get_json()["jobs"]}
    assert set(names) == {("Intake_2026-11.png", "scan 100%.png"), ("intake-other.png",)}
