"""Fuzzing: the API from its own OpenAPI document (schemathesis), and the file checks and page
decoding with damaged images and PDFs (hypothesis). No 5xx, answers that match the document,
no crash and no hang on any file."""

from __future__ import annotations

import contextlib
import io
import re
import time

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from inkwell.arrays import pack_array
from inkwell.config import Settings
from inkwell.errors import Refused
from inkwell.intake import Limits, check_upload
from inkwell.jobs import AcceptedFile, create_job, refresh_job
from inkwell.migrate import upgrade
from inkwell.models import Line, PageStatus
from inkwell.storage import put_line_image
from tests.clients import PASSWORD, csrf_token, make_token, make_user
from tests.conftest import new_postgres_database
from tests.documents import image_pdf
from tests.images import encode, line_png
from tests.tiny_models import render_text_line
from webui import create_app
from webui.errors import http_status
from worker.page_image import PageDecodeError, render_page


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The app on the embedded SQLite, then on a real PostgreSQL (which refuses more than SQLite does),
    holding one read job (a page, a line with its image and attention) for the routes to find."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(new_postgres_database()) if request.param == "postgres" else ""
        settings_ = Settings(
            data_dir=tmp_path_factory.mktemp("fuzz"),
            secret_key="fuzz",
            broker_url="redis://127.0.0.1:1/0",
            database_url=database_url,
        )
        upgrade(settings_)
        app = create_app(settings_)
        app.config["FUZZ_TOKEN"] = make_token(app, ["submit", "read", "review"], all_jobs=True)
        app.config["FUZZ_IDS"] = _read_job(app)
        yield app
        app.extensions["inkwell"]["database"].engine.dispose()


def _read_job(app) -> dict[str, str]:
    """A finished job with one read line (text, tokens, attention, image), written as a worker would."""
    with app.extensions["inkwell"]["database"].session() as session:
        job = create_job(session, [AcceptedFile("form.png", "image/png", line_png("Jane"))], "api", "line")
        page = job.pages[0]
        line = Line(
            page_id=page.id,
            number=1,
            bbox=[0, 0, 40, 10],
            text="Jane",
            confidence=0.9,
            tokens=[{"text": c, "confidence": 0.9} for c in "Jane"],
            attention=pack_array(np.full((4, 2, 3), 1 / 6), "float16"),
        )
        session.add(line)
        session.flush()
        put_line_image(session, line, line_png("Jane"))
        page.status, page.line_count = PageStatus.SUCCEEDED, 1
        session.flush()
        refresh_job(session, job)
        return {"job_id": job.id, "line_id": str(line.id), "page_id": str(page.id), "number": "1"}


def _operations(app) -> list:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_api_never_fails_and_answers_as_documented(fuzz_app) -> None:
    """Every operation, with cases generated from the published document: schemathesis's checks
    (no 5xx, status codes, content types and bodies as documented) must all pass."""
    headers = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_TOKEN']}"}
    operations = _operations(fuzz_app)
    assert len(operations) >= 11  # all but the document itself
    for operation in operations:
        # Uploads: bytes that fit "format: binary" are rarely an image, so a schema-valid upload is
        # refused (415/422, both documented); every other check still applies to it.
        excluded = [positive_data_acceptance] if operation.label == "POST /api/v1/jobs" else []

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=excluded)  # noqa: B023 - run below, this iteration

        check()


# -- hostile input on every route -------------------------------------------------------------------

# Path segments: NUL bytes, numbers past PostgreSQL's INTEGER, negative, Unicode digits, long text.
HOSTILE_SEGMENTS = (
    "%00",
    "a%00b",
    "2147483648",
    "4294967296",
    "99999999999999999999",
    "-1",
    "0",
    "%C2%B2",
    "%F0%9F%98%80",
    "x" * 300,
)
# Query values: the same, plus dates at the calendar's edges and an encoded lone surrogate.
HOSTILE_VALUES = (
    "%00",
    "a%00b",
    "-1",
    "-99999999999999999999",
    "99999999999999999999",
    "%C2%B2",
    "%ED%A0%80",
    "1e3",
    " 7",
    "9999-12-31T23:59:59%2B23:59",
    "0001-01-01T00:00:00%2B14:00",
    "x" * 3000,
)
QUERY_NAMES = ("q", "limit", "token", "format", "since", "until", "status", "needs_review", "next")
HOSTILE_JSON = (
    rb'{"text": "a\u0000b"}',
    rb'{"text": "\ud800"}',
    rb'{"te\u0000xt": "a"}',
    b'{"reviewed": 1e999}',
    b'{"text": 99999999999999999999999}',
    b"[" * 100_000 + b"]" * 100_000,
    b'{"text": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"\x00",
    b'{"text": "' + b"a" * 50_000 + b'"}',
)


def _browser(app):
    client = app.test_client()
    username = make_user(app)
    form = client.get("/sign-in").get_data(as_text=True)
    client.post("/sign-in", data={"csrf_token": csrf_token(form), "username": username, "password": PASSWORD})
    return client, csrf_token(client.get("/").get_data(as_text=True))


def _paths(app, ids: dict[str, str]) -> list[tuple[str, list[str]]]:
    """Every route of the app (but static files): URLs with real ids, then with each hostile segment per variable."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        template = re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        urls = [template.format(**ids)]
        for variable in rule.arguments:
            urls += [template.format(**{**ids, variable: value}) for value in HOSTILE_SEGMENTS]
        found.append((urls[0], urls, sorted(rule.methods - {"HEAD", "OPTIONS"})))
    return found


def test_hostile_input_on_every_route_never_answers_5xx(fuzz_app) -> None:
    """Every route of the API and of the HTML pages, as a token and as a signed-in reviewer, with
    NUL bytes, out-of-range and Unicode numbers, hostile dates, deep or broken JSON and hostile
    form fields and file names: never a 5xx, and the API always in its one error shape."""
    ids = fuzz_app.config["FUZZ_IDS"]
    token = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_TOKEN']}"}
    browser, csrf = _browser(fuzz_app)
    api = fuzz_app.test_client()
    failures: list[str] = []
    sent = 0

    def send(client, method: str, url: str, **kwargs) -> None:
        nonlocal sent
        sent += 1
        response = client.open(url, method=method, **kwargs)
        if response.status_code >= 500 and not (
            url.startswith("/readyz") and response.status_code == 503
        ):  # no broker here: not ready
            failures.append(f"{method} {url[:120]} -> {response.status_code}")
        elif url.startswith("/api/") and response.status_code >= 400 and response.status_code not in (401, 405):
            body = response.get_json(silent=True) or {}
            if set(body.get("error", {})) != {"code", "message"}:
                failures.append(f"{method} {url[:120]} -> {response.status_code} without the error shape")

    for _, urls, methods in _paths(fuzz_app, ids):
        for url in urls:
            for method in methods:
                for client, headers in ((api, {**token}), (browser, {"X-CSRFToken": csrf})):
                    if url == "/sign-out" and client is browser:
                        client = _browser(fuzz_app)[0]  # a throw-away session: the shared one must stay signed in
                    if method == "PATCH":
                        for body in HOSTILE_JSON:
                            send(
                                client, method, url, data=body, headers={**headers, "Content-Type": "application/json"}
                            )
                    elif method == "POST":
                        send(
                            client,
                            method,
                            url,
                            headers=headers,
                            data={
                                "csrf_token": csrf,
                                "username": "a\x00b",
                                "password": "p\x00",
                                "layout": "page\x00",
                                "callback_url": "http://example.org/%00",
                                "files": (io.BytesIO(line_png("x")), "a\x00b.png"),
                            },
                        )
                        send(
                            client,
                            method,
                            url,
                            headers={**headers, "Idempotency-Key": "k\x00"},
                            data={
                                "csrf_token": csrf,
                                "files": (io.BytesIO(line_png("x")), "x.png"),
                                "callback_url": "http://[::169.254.169.254]/",
                            },
                        )
                    else:
                        send(client, method, url, headers=headers)
        base = urls[0]
        # /readyz and /metrics read no query, and while the broker is down (as here) each call waits
        # for it to time out: hostile query values there would only spend minutes waiting.
        if "GET" in methods and not base.startswith(("/readyz", "/metrics")):
            for name in QUERY_NAMES:
                for value in HOSTILE_VALUES:
                    send(
                        api if base.startswith("/api/") else browser,
                        "GET",
                        f"{base}?{name}={value}&format=png",
                        headers=token,
                    )
    assert sent > 1000
    assert failures == [], f"{len(failures)} of {sent} hostile requests failed:\n" + "\n".join(failures[:40])


def test_numbers_are_parsed_strictly_and_nul_bytes_refused(fuzz_app) -> None:
    """The requests that answered 500 (or did the wrong thing on SQLite) when probed, one by one."""
    client = fuzz_app.test_client()
    headers = {"Authorization": f"Bearer {fuzz_app.config['FUZZ_TOKEN']}"}
    # a fresh read job: the fuzzing before may have deleted, split or merged the first one's line
    ids = _read_job(fuzz_app)
    for url in (
        "/api/v1/jobs?limit=-1",
        "/api/v1/jobs?limit=0",
        "/api/v1/jobs?limit=201",
        "/api/v1/jobs?limit=-99999999999999999999",
    ):
        response = client.get(url, headers=headers)
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_filter", url
    assert len(client.get("/api/v1/jobs?limit=1", headers=headers).get_json()["jobs"]) == 1
    attention = f"/api/v1/lines/{ids['line_id']}/attention?format=png&token="
    assert client.get(attention + "%C2%B2", headers=headers).status_code == 400  # "²".isdigit() is True
    assert client.get(attention + "3", headers=headers).status_code == 200
    assert client.get(attention + "4", headers=headers).status_code == 404  # the line has 4 tokens
    # white space alone is no query: refused, and the document says so (schemathesis found the gap)
    blank = client.get("/api/v1/search?q=%0B%20", headers=headers)
    assert blank.status_code == 400 and blank.get_json()["error"]["code"] == "missing_query"
    words = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/search"]["get"]["parameters"][0]
    pattern = words["schema"]["pattern"]
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace()]  # what the server's strip() removes
    assert [c for c in spaces if re.fullmatch(pattern, c + " ")] == [] and re.fullmatch(pattern, " Jane ")
    assert (
        re.fullmatch(pattern, "\ufeff") and client.get("/api/v1/search?q=%EF%BB%BF", headers=headers).status_code == 200
    )
    assert client.get("/api/v1/search?q=%1C%C2%85", headers=headers).get_json()["error"]["code"] == "missing_query"
    for url in ("/api/v1/jobs/%00", f"/api/v1/jobs/{ids['job_id']}%00/result", "/api/v1/search?q=%00"):
        refused = client.get(url, headers=headers)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "bad_input", url
    patched = client.patch(f"/api/v1/lines/{ids['line_id']}", json={"text": "a\u0000b"}, headers=headers)
    assert patched.status_code == 400 and patched.get_json()["error"]["code"] == "invalid_body"
    deep = client.patch(
        f"/api/v1/lines/{ids['line_id']}", data=b"[" * 100_000, headers={**headers, "Content-Type": "application/json"}
    )
    assert deep.status_code == 400
    browser, _ = _browser(fuzz_app)
    assert browser.get(f"/jobs/{ids['job_id']}/pages/2147483648/image").status_code == 404
    assert browser.get(f"/jobs/{ids['job_id']}/pages/1/image").status_code == 200


# -- damaged files --------------------------------------------------------------------------------

LIMITS = Limits(max_file_bytes=5_000_000, max_image_pixels=20_000_000, max_pages=50, min_image_side=8, pdf_dpi=100)


def _seeds() -> list[bytes]:
    line = render_text_line("Jane Doe 42")
    return [
        encode(line, "PNG"),
        encode(line, "JPEG", quality=80),
        encode(line, "WEBP"),
        encode(line.convert("L"), "TIFF"),
        encode(line.convert("1"), "TIFF", compression="group4"),
        image_pdf([line, line]),
    ]


SEEDS = _seeds()


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 12))):
        where = draw(st.integers(0, len(data) - 1))
        data[where] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(1, len(data))))
    if cut is not None:
        data = data[:cut]
    if draw(st.booleans()):  # the wrong magic at the front
        data[:4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


@given(damaged())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_damaged_files_are_refused_or_read_never_crash_or_hang(data: bytes) -> None:
    started = time.monotonic()
    try:
        checked = check_upload(data, "fuzz.bin", LIMITS)
    except Refused as error:
        assert 400 <= http_status(error.code) < 500
    else:
        for index in range(checked.page_count):  # accepted: the worker must cope with it too
            try:
                image = render_page(data, checked.media_type, index, LIMITS.max_image_pixels, LIMITS.pdf_dpi)
                assert image.mode == "RGB"
            except PageDecodeError:
                pass
    assert time.monotonic() - started < 10, "no file may take this long"
