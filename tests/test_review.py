"""Reviewing over the API: corrections with history, accepting, reviewed pages and jobs, what needs
review, attention maps, search and similar pages; on results written by the real pipeline."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from inkwell.config import Settings
from inkwell.db import Database
from inkwell.search import _has_trigrams
from tests.clients import api_client
from tests.images import line_png
from worker.pipeline import PageLimits, prepare_page, recognize_pages
from worker.recognizer import Recognizer

TEXTS = ["hello world", "Jane Doe", "hello world", "Paris 75001"]


@pytest.fixture
def job(app: Flask, reviewer: FlaskClient, recognizer: Recognizer) -> dict:
    """A job of four one-line pages, read by the real pipeline (no queue)."""
    files = [(io.BytesIO(line_png(text)), f"{i}.png") for i, text in enumerate(TEXTS)]
    job_id = reviewer.post("/api/v1/jobs", data={"files": files, "layout": "line"}).get_json()["id"]
    db: Database = app.extensions["inkwell"]["database"]
    body = reviewer.get(f"/api/v1/jobs/{job_id}").get_json()
    page_ids = [page["id"] for page in body["pages"]]
    for page_id in page_ids:
        assert prepare_page(db, page_id, PageLimits(10**7, 150), lambda image: [])
    recognize_pages(db, recognizer, page_ids)
    return reviewer.get(f"/api/v1/jobs/{job_id}").get_json()


def test_a_correction_keeps_its_history_and_reaches_the_exports(reviewer: FlaskClient, job: dict) -> None:
    line = job["pages"][1]["lines"][0]
    assert line["text"] == "Jane Doe" and not line["corrected"]
    first = reviewer.patch(f"/api/v1/lines/{line['id']}", json={"text": "Jane  Dee "}).get_json()
    assert (
        first["text"] == "Jane Dee" and first["model_text"] == "Jane Doe" and first["corrected"] and first["reviewed"]
    )
    second = reviewer.patch(f"/api/v1/lines/{line['id']}", json={"text": "Jane Doe-Smith"}).get_json()
    history = second["history"]
    assert [(h["previous"], h["text"]) for h in history] == [("Jane Doe", "Jane Dee"), ("Jane Dee", "Jane Doe-Smith")]
    assert all(h["author"].startswith("token:") for h in history)
    # back to what the model read: no longer counted as corrected, but the history remembers
    back = reviewer.patch(f"/api/v1/lines/{line['id']}", json={"text": "Jane Doe"}).get_json()
    assert not back["corrected"] and len(back["history"]) == 3
    reviewer.patch(f"/api/v1/lines/{line['id']}", json={"text": "Jane Doe-Smith"})
    rows = list(
        csv.DictReader(io.StringIO(reviewer.get(f"/api/v1/jobs/{job['id']}/result?format=csv").get_data(as_text=True)))
    )
    assert rows[1]["text"] == "Jane Doe-Smith" and rows[1]["corrected"] == "yes"
    assert "Jane Doe-Smith" in reviewer.get(f"/api/v1/jobs/{job['id']}/result?format=txt").get_data(as_text=True)
    alto = reviewer.get(f"/api/v1/jobs/{job['id']}/result?format=alto").get_data(as_text=True)
    assert 'CONTENT="Doe-Smith"' in alto


def test_bad_patches_are_refused(reviewer: FlaskClient, job: dict) -> None:
    line_id = job["pages"][0]["lines"][0]["id"]
    for body in ({}, {"text": 5}, {"reviewed": False}, {"text": "a", "reviewed": True}, {"text": "x" * 2001}, []):
        response = reviewer.patch(f"/api/v1/lines/{line_id}", json=body)
        assert response.status_code == 400, body
    assert reviewer.patch("/api/v1/lines/999999", json={"reviewed": True}).status_code == 404


def test_accepting_lines_and_reviewing_pages_until_the_job_is_reviewed(
    app: Flask, reviewer: FlaskClient, job: dict
) -> None:
    low = Settings.model_fields["review_threshold"].default
    needing = reviewer.get("/api/v1/jobs?needs_review=1").get_json()["jobs"]
    pending = sum(1 for page in job["pages"] for line in page["lines"] if line["confidence"] < low)
    assert (needing[0]["needs_review"] if needing else 0) == pending
    first_line = job["pages"][0]["lines"][0]
    accepted = reviewer.patch(f"/api/v1/lines/{first_line['id']}", json={"reviewed": True}).get_json()
    assert accepted["reviewed"] and not accepted["corrected"] and accepted["history"] == []
    for index, page in enumerate(job["pages"]):
        result = reviewer.post(f"/api/v1/pages/{page['id']}/review").get_json()
        assert result["job_reviewed"] == (index == len(job["pages"]) - 1)
    summary = reviewer.get(f"/api/v1/jobs/{job['id']}").get_json()
    assert summary["reviewed"] and all(p["reviewed"] for p in summary["pages"])
    assert reviewer.get("/api/v1/jobs?needs_review=1").get_json()["jobs"] == []
    # a later correction re-opens its page, and so the job
    reviewer.patch(f"/api/v1/lines/{first_line['id']}", json={"text": "hello there"})
    summary = reviewer.get(f"/api/v1/jobs/{job['id']}").get_json()
    assert not summary["reviewed"] and not summary["pages"][0]["reviewed"] and summary["pages"][1]["reviewed"]


def test_a_save_that_changes_only_spaces_keeps_the_page_reviewed(reviewer: FlaskClient, job: dict) -> None:
    page = job["pages"][1]
    line = page["lines"][0]
    assert reviewer.post(f"/api/v1/pages/{page['id']}/review").status_code == 200
    saved = reviewer.patch(f"/api/v1/lines/{line['id']}", json={"text": f"  {line['text'].replace(' ', '   ')} "})
    assert saved.status_code == 200 and saved.get_json()["history"] == []
    summary = reviewer.get(f"/api/v1/jobs/{job['id']}").get_json()
    assert summary["pages"][1]["reviewed"]
    # a real change still re-opens the page
    reviewer.patch(f"/api/v1/lines/{line['id']}", json={"text": line["text"] + " Jr"})
    assert not reviewer.get(f"/api/v1/jobs/{job['id']}").get_json()["pages"][1]["reviewed"]


def test_attention_as_json_and_as_a_heat_map(reviewer: FlaskClient, job: dict) -> None:
    line = job["pages"][0]["lines"][0]
    attention = reviewer.get(f"/api/v1/lines/{line['id']}/attention").get_json()
    assert len(attention["maps"]) == len(attention["tokens"]) == len("hello world")
    rows, cols = attention["grid"]
    assert rows == 1 and cols > 0 and all(abs(sum(map(sum, m)) - 1) < 0.01 for m in attention["maps"])
    image = reviewer.get(f"/api/v1/lines/{line['id']}/image")
    assert image.mimetype == "image/png"
    crop = Image.open(io.BytesIO(image.data))
    for query in ("format=png", "format=png&token=3"):
        heat = reviewer.get(f"/api/v1/lines/{line['id']}/attention?{query}")
        assert heat.mimetype == "image/png" and Image.open(io.BytesIO(heat.data)).size == crop.size
    assert (
        reviewer.get(f"/api/v1/lines/{line['id']}/attention?format=png&token=99").status_code == 404
    )  # no such token in this line
    assert reviewer.get(f"/api/v1/lines/{line['id']}/attention?format=gif").status_code == 400


def test_search_finds_model_and_corrected_text(reviewer: FlaskClient, job: dict, app: Flask) -> None:
    hits = reviewer.get("/api/v1/search?q=HELLO").get_json()["hits"]
    assert [(h["page_number"], h["text"]) for h in hits] == [(1, "hello world"), (3, "hello world")]
    line_id = job["pages"][3]["lines"][0]["id"]
    reviewer.patch(f"/api/v1/lines/{line_id}", json={"text": "Lyon 69001"})
    assert [h["line_id"] for h in reviewer.get("/api/v1/search?q=lyon 69001").get_json()["hits"]] == [line_id]
    assert [h["line_id"] for h in reviewer.get("/api/v1/search?q=Paris").get_json()["hits"]] == [
        line_id
    ]  # the model's text too
    assert reviewer.get("/api/v1/search?q=50%25_").get_json()["hits"] == []  # LIKE wildcards are literal
    # forgiving: misread letters still find the line, ranked by similarity, read and corrected text alike
    hits = reviewer.get("/api/v1/search?q=hel1o world").get_json()["hits"]
    assert [h["page_number"] for h in hits] == [1, 3] and all(0.6 <= h["similarity"] < 1 for h in hits)
    reviewer.patch(f"/api/v1/lines/{job['pages'][1]['lines'][0]['id']}", json={"text": "Maria GONZALE2"})
    hits = reviewer.get("/api/v1/search?q=gonzalez").get_json()["hits"]
    assert [h["text"] for h in hits] == ["Maria GONZALE2"] and hits[0]["page_id"] == job["pages"][1]["id"]
    exact = reviewer.get("/api/v1/search?q=Lyon").get_json()["hits"]
    assert exact[0]["line_id"] == line_id and exact[0]["similarity"] == 1.0
    assert reviewer.get("/api/v1/search?q=zzzzqqq").get_json()["hits"] == []
    with app.extensions["inkwell"][
        "database"
    ].session() as session:  # PostgreSQL ranks with pg_trgm (revision 0005 installs it)
        assert _has_trigrams(session) == (session.get_bind().dialect.name == "postgresql")
    assert reviewer.get("/api/v1/search?q=").status_code == 400
    stranger = api_client(app, ["read"])
    assert stranger.get("/api/v1/search?q=hello").get_json()["hits"] == []


def test_similar_pages_rank_the_same_scan_first(reviewer: FlaskClient, job: dict) -> None:
    first, _, duplicate, _ = job["pages"]
    similar = reviewer.get(f"/api/v1/pages/{first['id']}/similar").get_json()["similar"]
    assert similar[0]["page_id"] == duplicate["id"] and similar[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert all(hit["similarity"] < 0.9999 for hit in similar[1:])


def test_pages_read_by_another_model_are_not_compared(app: Flask, reviewer: FlaskClient, job: dict) -> None:
    import numpy as np

    from inkwell.arrays import pack_array
    from inkwell.models import Page

    first, second, duplicate, _ = job["pages"]
    with app.extensions["inkwell"]["database"].session() as session:
        session.get(Page, second["id"]).embedding = pack_array(
            np.ones(768, np.float32), "float32"
        )  # another model's size
    similar = reviewer.get(f"/api/v1/pages/{first['id']}/similar").get_json()["similar"]
    assert second["id"] not in [hit["page_id"] for hit in similar] and similar[0]["page_id"] == duplicate["id"]


def test_embeddings_over_the_api(app: Flask, reviewer: FlaskClient, job: dict, recognizer: Recognizer) -> None:
    import numpy as np

    page = job["pages"][1]
    line_id = page["lines"][0]["id"]
    line = reviewer.get(f"/api/v1/lines/{line_id}/embedding").get_json()
    assert (
        line["kind"] == "line" and line["id"] == line_id and line["layer"] is None and line["model"] == recognizer.name
    )
    assert line["dimensions"] == len(line["embedding"]) == 64
    expected = recognizer.recognize(
        [Image.open(io.BytesIO(reviewer.get(f"/api/v1/lines/{line_id}/image").data)).convert("RGB")]
    )[0].embedding
    np.testing.assert_allclose(line["embedding"], expected, atol=1e-5)
    npy = reviewer.get(f"/api/v1/lines/{line_id}/embedding?format=npy")
    assert npy.status_code == 200 and npy.headers["Content-Disposition"].endswith('.npy"')
    np.testing.assert_array_equal(np.load(io.BytesIO(npy.data)), np.asarray(line["embedding"], np.float32))
    whole = reviewer.get(f"/api/v1/pages/{page['id']}/embedding").get_json()
    assert whole["kind"] == "page" and whole["model"] == recognizer.name and whole["layer"] is None
    np.testing.assert_allclose(whole["embedding"], line["embedding"], atol=1e-6)  # a one-line page: its line's
    assert (
        reviewer.get(f"/api/v1/pages/{page['id']}/embedding?format=xml").get_json()["error"]["code"] == "invalid_format"
    )
    assert reviewer.get("/api/v1/lines/999999/embedding").status_code == 404
    assert api_client(app, ["read"]).get(f"/api/v1/lines/{line_id}/embedding").status_code == 404  # another token's job
    assert app.test_client().get(f"/api/v1/pages/{page['id']}/embedding").status_code == 401


def test_a_page_not_yet_read_has_no_embedding(app: Flask, reviewer: FlaskClient) -> None:
    files = [(io.BytesIO(line_png("ink")), "a.png")]
    job_id = reviewer.post("/api/v1/jobs", data={"files": files, "layout": "line"}).get_json()["id"]
    page_id = reviewer.get(f"/api/v1/jobs/{job_id}").get_json()["pages"][0]["id"]
    response = reviewer.get(f"/api/v1/pages/{page_id}/embedding")
    assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


def test_embeddings_of_another_layer_are_not_compared(
    app: Flask, reviewer: FlaskClient, tiny_char_model: Path, job: dict
) -> None:
    """A job read with INKWELL_EMBEDDING_LAYER=1 stores that layer, and its pages are compared only among themselves."""
    at_one = Recognizer.load(tiny_char_model, device="cpu", max_new_tokens=32, embedding_layer=1)
    files = [(io.BytesIO(line_png(text)), f"{i}.png") for i, text in enumerate(TEXTS)]
    job_id = reviewer.post("/api/v1/jobs", data={"files": files, "layout": "line"}).get_json()["id"]
    db: Database = app.extensions["inkwell"]["database"]
    page_ids = [page["id"] for page in reviewer.get(f"/api/v1/jobs/{job_id}").get_json()["pages"]]
    for page_id in page_ids:
        assert prepare_page(db, page_id, PageLimits(10**7, 150), lambda image: [])
    recognize_pages(db, at_one, page_ids)
    stored = reviewer.get(f"/api/v1/pages/{page_ids[0]}/embedding").get_json()
    assert stored["layer"] == 1 and stored["model"] == at_one.name
    line_id = reviewer.get(f"/api/v1/jobs/{job_id}").get_json()["pages"][0]["lines"][0]["id"]
    assert reviewer.get(f"/api/v1/lines/{line_id}/embedding").get_json()["layer"] == 1
    # same model, same vector size, another layer: never mixed in either direction
    layer_one = {hit["page_id"] for hit in reviewer.get(f"/api/v1/pages/{page_ids[0]}/similar").get_json()["similar"]}
    assert layer_one == set(page_ids[1:])
    final = {
        hit["page_id"] for hit in reviewer.get(f"/api/v1/pages/{job['pages'][0]['id']}/similar").get_json()["similar"]
    }
    assert final == {page["id"] for page in job["pages"][1:]}
