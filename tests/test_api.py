"""The HTTP API in-process (Flask test client) on both databases, with a real (SQLite) broker."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import func, select

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.migrate import upgrade
from inkwell.models import Job, JobStatus, Line, Page, PageStatus, Upload
from inkwell.queue import QUEUE_PAGES
from tests.broker import drain
from tests.clients import api_client, signed_in
from tests.images import NOT_AN_IMAGE, declared_size_png, line_png, truncated_png
from webui import create_app
from webui.openapi import openapi_document


@pytest.fixture
def app(backend_settings: Settings) -> Flask:
    upgrade(backend_settings)
    return create_app(backend_settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An API client with a token that may do everything."""
    return api_client(app, ["submit", "read", "review"])


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A browser-like client, signed in as a reviewer."""
    return signed_in(app)


def _db(app: Flask) -> Database:
    return app.extensions["inkwell"]["database"]


def _queued_messages(app: Flask) -> list[tuple[str, list]]:
    return drain(app.extensions["inkwell"]["celery"], QUEUE_PAGES)


def _schema(name: str) -> dict:
    document = openapi_document()
    return {"$ref": f"#/components/schemas/{name}", "components": document["components"]}


def _assert_error_shape(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    jsonschema.validate(body, _schema("ErrorResponse"))
    assert body["error"]["code"] == code and body["error"]["message"]


def _count(app: Flask, table) -> int:
    with _db(app).session() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_submit_stores_then_enqueues_each_page(app: Flask, client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/jobs",
        data={"files": [(io.BytesIO(line_png("hello world")), "a.png"), (io.BytesIO(line_png("ink")), "b.png")]},
    )
    assert response.status_code == 202
    body = response.get_json()
    jsonschema.validate(body, _schema("JobAccepted"))
    assert body["status"] == "queued"
    assert response.headers["Location"] == f"/api/v1/jobs/{body['id']}"
    with _db(app).session() as session:
        job = session.get(Job, body["id"])
        assert job.status == JobStatus.QUEUED and job.page_count == 2
        page_ids = sorted(page.id for page in job.pages)
        assert [p.upload.filename for p in job.pages] == ["a.png", "b.png"]
    assert sorted(args[0] for _, args in _queued_messages(app)) == page_ids
    assert _count(app, Upload) == 2


def test_job_resource_matches_the_published_schema(app: Flask, client: FlaskClient) -> None:
    job_id = client.post("/api/v1/jobs", data={"file": (io.BytesIO(line_png("yes")), "y.png")}).get_json()["id"]
    running = client.get(f"/api/v1/jobs/{job_id}")
    assert running.status_code == 200 and running.headers["Retry-After"] == "2"
    jsonschema.validate(running.get_json(), _schema("JobOut"))
    not_yet = client.get(f"/api/v1/jobs/{job_id}/result")
    _assert_error_shape(not_yet, 409, "job_not_finished")
    assert not_yet.headers["Retry-After"]

    with _db(app).session() as session:  # finish it by hand: the pipeline has its own tests
        job = session.get(Job, job_id)
        page = job.pages[0]
        session.add(
            Line(
                page_id=page.id,
                number=1,
                bbox=[0, 0, 10, 10],
                text="yes",
                confidence=0.75,
                tokens=[{"text": "yes", "confidence": 0.75}],
            )
        )
        page.status = PageStatus.SUCCEEDED
        page.line_count = 1
        session.flush()
        from inkwell.jobs import refresh_job

        refresh_job(session, job)
    done = client.get(f"/api/v1/jobs/{job_id}")
    assert "Retry-After" not in done.headers
    body = done.get_json()
    jsonschema.validate(body, _schema("JobOut"))
    assert body["status"] == "succeeded"
    assert body["progress"] == {"pages_total": 1, "pages_done": 1, "pages_failed": 0, "lines_total": 1, "lines_done": 1}
    assert body["pages"][0]["text"] == "yes" and body["pages"][0]["lines"][0]["confidence"] == 0.75

    as_json = client.get(f"/api/v1/jobs/{job_id}/result?format=json")
    assert as_json.get_json() == body
    as_text = client.get(f"/api/v1/jobs/{job_id}/result?format=txt")
    assert as_text.mimetype == "text/plain" and as_text.get_data(as_text=True) == "yes\n"
    as_csv = client.get(f"/api/v1/jobs/{job_id}/result?format=csv")
    assert as_csv.mimetype == "text/csv" and as_csv.get_data(as_text=True).splitlines()[1].startswith(
        "1,1,0,0,10,10,yes,"
    )
    for fmt, media_type in (("alto", "application/xml"), ("pagexml", "application/zip")):
        exported = client.get(f"/api/v1/jobs/{job_id}/result?format={fmt}")
        assert exported.status_code == 200 and exported.mimetype == media_type
        assert f"inkwell-{job_id}" in exported.headers["Content-Disposition"]
    _assert_error_shape(client.get(f"/api/v1/jobs/{job_id}/result?format=docx"), 400, "invalid_format")


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"files": [(NOT_AN_IMAGE, "form.png")]}, 415, "unsupported_media_type"),
        ({"files": [(truncated_png(), "cut.png")]}, 422, "invalid_image"),
        ({"files": [(b"", "empty.png")]}, 400, "empty_file"),
        ({"files": [(declared_size_png(30000, 30000), "bomb.png")]}, 413, "image_too_large"),
        ({"comment": "no file here"}, 400, "missing_file"),
        # one bad file spoils the whole request: nothing of it is stored
        ({"files": [(line_png("fine"), "ok.png"), (truncated_png(), "cut.png")]}, 422, "invalid_image"),
    ],
    ids=["non-image", "truncated", "empty", "bomb", "missing-field", "one-bad-of-two"],
)
def test_bad_uploads_get_the_error_shape_and_store_nothing(
    app: Flask, client: FlaskClient, fields, status: int, code: str
) -> None:
    form = {
        name: [(io.BytesIO(data), filename) for data, filename in value] if isinstance(value, list) else value
        for name, value in fields.items()
    }
    _assert_error_shape(client.post("/api/v1/jobs", data=form), status, code)
    assert _count(app, Job) == 0 and _count(app, Page) == 0 and _count(app, Upload) == 0
    assert _queued_messages(app) == []
    assert client.get("/healthz").status_code == 200


def test_request_over_the_size_limit(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="x", max_request_bytes=50_000, max_file_bytes=50_000)
    upgrade(settings)
    client = api_client(create_app(settings), ["submit"])
    _assert_error_shape(
        client.post("/api/v1/jobs", data={"files": (io.BytesIO(b"\x89PNG" + b"0" * 60_000), "huge.png")}),
        413,
        "request_too_large",
    )


def test_unknown_job_and_unknown_route(client: FlaskClient) -> None:
    _assert_error_shape(client.get("/api/v1/jobs/nope"), 404, "not_found")
    _assert_error_shape(client.get("/api/v1/nothing-here"), 404, "not_found")
    _assert_error_shape(client.delete("/api/v1/jobs"), 405, "method_not_allowed")


def test_openapi_document_is_valid_and_covers_every_api_route(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    validate(document)
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            path = (
                rule.rule.replace("<job_id>", "{job_id}")
                .replace("<row_id:line_id>", "{line_id}")
                .replace("<row_id:page_id>", "{page_id}")
            )
            routed |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert routed == documented


def test_every_response_carries_security_headers(client: FlaskClient, browser: FlaskClient) -> None:
    for response in (browser.get("/"), client.get("/api/v1/jobs/x"), client.get("/healthz"), browser.get("/sign-in")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_html_upload_needs_the_csrf_token(app: Flask, browser: FlaskClient) -> None:
    client = browser
    page = client.get("/").get_data(as_text=True)
    assert 'name="csrf_token"' in page and "multiple" in page
    refused = client.post("/jobs", data={"files": (io.BytesIO(line_png("x")), "x.png")})
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    assert _count(app, Job) == 0
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    accepted = client.post(
        "/jobs",
        data={
            "csrf_token": token,
            "files": [(io.BytesIO(line_png("x")), "x.png"), (io.BytesIO(line_png("y")), "y.png")],
        },
    )
    assert accepted.status_code == 303 and accepted.headers["Location"].startswith("/jobs/")
    job_page = client.get(accepted.headers["Location"])
    assert job_page.status_code == 200 and "job.js" in job_page.get_data(as_text=True)
    bad = client.post("/jobs", data={"csrf_token": token, "files": (io.BytesIO(NOT_AN_IMAGE), "x.png")})
    assert bad.status_code == 415 and "not a file in a supported format" in bad.get_data(as_text=True)


def test_page_images_are_served(app: Flask, client: FlaskClient, browser: FlaskClient) -> None:
    from PIL import Image

    from inkwell.storage import put_page_image
    from tests.images import encode

    tiff = encode(Image.new("L", (30, 10), 255), "TIFF")
    job_id = client.post(
        "/api/v1/jobs", data={"files": [(io.BytesIO(line_png("a")), "a.png"), (io.BytesIO(tiff), "b.tif")]}
    ).get_json()["id"]
    png = browser.get(f"/jobs/{job_id}/pages/1/image")
    assert png.mimetype == "image/png" and png.data == line_png("a")  # before preparation: the upload itself
    _assert_not_ready = browser.get(f"/jobs/{job_id}/pages/2/image")
    assert _assert_not_ready.status_code == 404  # browsers cannot show TIFF: wait for the page image
    with _db(app).session() as session:
        put_page_image(session, session.get(Job, job_id).pages[1], b"\xff\xd8\xff-jpeg", "image/jpeg")
    prepared = browser.get(f"/jobs/{job_id}/pages/2/image")
    assert prepared.mimetype == "image/jpeg" and prepared.data == b"\xff\xd8\xff-jpeg"
    assert browser.get(f"/jobs/{job_id}/pages/3/image").status_code == 404


def test_pdfs_become_one_page_each_and_limits_count_all_pages(tmp_path: Path) -> None:
    from tests.documents import encrypted_pdf, image_pdf, many_page_pdf

    settings = Settings(data_dir=tmp_path, secret_key="x", max_pages_per_job=5)
    upgrade(settings)
    app = create_app(settings)
    client = api_client(app, ["submit", "read"])
    from PIL import Image

    pdf = image_pdf([Image.new("L", (400, 500), 255)] * 3)
    body = client.post(
        "/api/v1/jobs", data={"files": [(io.BytesIO(pdf), "scan.pdf"), (io.BytesIO(line_png("x")), "x.png")]}
    ).get_json()
    job = client.get(f"/api/v1/jobs/{body['id']}").get_json()
    assert [(p["number"], p["filename"], p["source_page"]) for p in job["pages"]] == [
        (1, "scan.pdf", 1),
        (2, "scan.pdf", 2),
        (3, "scan.pdf", 3),
        (4, "x.png", 1),
    ]
    assert job["progress"]["pages_total"] == 4
    assert _queued_messages(app) and _count(app, Upload) == 2
    _assert_error_shape(
        client.post("/api/v1/jobs", data={"files": [(io.BytesIO(pdf), "a.pdf"), (io.BytesIO(pdf), "b.pdf")]}),
        413,
        "too_many_pages",
    )
    _assert_error_shape(
        client.post("/api/v1/jobs", data={"files": [(io.BytesIO(many_page_pdf(500)), "big.pdf")]}),
        413,
        "too_many_pages",
    )
    _assert_error_shape(
        client.post("/api/v1/jobs", data={"files": [(io.BytesIO(encrypted_pdf()), "secret.pdf")]}), 422, "encrypted_pdf"
    )
    _assert_error_shape(
        client.post("/api/v1/jobs", data={"layout": "poster", "files": [(io.BytesIO(pdf), "a.pdf")]}),
        400,
        "invalid_layout",
    )
    assert _count(app, Job) == 1


def test_the_web_side_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from inkwell.config import Settings; from webui import create_app; "
        f"app = create_app(Settings(data_dir={str(tmp_path)!r}, secret_key='x')); "
        "app.test_client().get('/sign-in'); print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))"
    )
    output = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(output) == []
