"""Fuzzing: the API from its own OpenAPI document (schemathesis), and the file checks and page
decoding with damaged images and PDFs (hypothesis). No 5xx, answers that match the document,
no crash and no hang on any file."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import schemathesis
from schemathesis.checks import positive_data_acceptance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from inkwell.config import Settings
from inkwell.intake import Limits, UploadError, check_upload
from inkwell.migrate import upgrade
from tests.clients import make_token
from tests.documents import image_pdf
from tests.images import encode
from tests.tiny_models import render_text_line
from webui import create_app
from worker.page_image import PageDecodeError, render_page


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory):
    settings_ = Settings(data_dir=tmp_path_factory.mktemp("fuzz"), secret_key="fuzz", broker_url="redis://127.0.0.1:1/0")
    upgrade(settings_)
    app = create_app(settings_)
    app.config["FUZZ_TOKEN"] = make_token(app, ["submit", "read", "review"])
    return app


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
            case.call_and_validate(headers=headers, excluded_checks=excluded)

        check()


# -- damaged files --------------------------------------------------------------------------------

LIMITS = Limits(max_file_bytes=5_000_000, max_image_pixels=20_000_000, max_pages=50, min_image_side=8, pdf_dpi=100)


def _seeds() -> list[bytes]:
    line = render_text_line("Jane Doe 42")
    return [
        encode(line, "PNG"), encode(line, "JPEG", quality=80), encode(line, "WEBP"), encode(line.convert("L"), "TIFF"),
        encode(line.convert("1"), "TIFF", compression="group4"), image_pdf([line, line]),
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
    except UploadError as error:
        assert 400 <= error.status < 500
    else:
        for index in range(checked.page_count):  # accepted: the worker must cope with it too
            try:
                image = render_page(data, checked.media_type, index, LIMITS.max_image_pixels, LIMITS.pdf_dpi)
                assert image.mode == "RGB"
            except PageDecodeError:
                pass
    assert time.monotonic() - started < 10, "no file may take this long"
