"""Repairing a page's lines over the API: draw, move, split, merge and delete, each in the line
history (or the audit log), reading order renumbered, the changed lines sent to the model queue
and read again by the real pipeline function the worker task runs; other tokens' pages are 404,
a token without the ``review`` scope 403. Deleting jobs needs the ``delete`` scope."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import func, select

from inkwell.broker_contents import held_arguments
from inkwell.db import Database
from inkwell.models import AuditEntry, Job, Line, LineImage, Page, Upload
from inkwell.queue import QUEUE_LINES, TASK_READ_LINES, enqueue_line_reading, make_celery
from inkwell.sweeper import sweep
from tests.broker import drain
from tests.clients import api_client
from tests.conftest import make_settings
from tests.images import encode
from tests.tiny_models import render_text_line
from worker.line_finder import FoundLine
from worker.line_rereading import read_lines_again
from worker.pipeline import PageLimits, prepare_page, recognize_pages
from worker.recognizer import Recognizer

LEFT, RIGHT, BELOW = "hello world", "Jane Doe", "Paris 75001"


def _db(app: Flask) -> Database:
    return app.extensions["inkwell"]["database"]


def _form() -> tuple[Image.Image, dict[str, list[int]]]:
    """A page with two texts side by side and one below; returns it and each text's box."""
    left, right, below = (render_text_line(t) for t in (LEFT, RIGHT, BELOW))
    page = Image.new("RGB", (left.width + right.width + 60, left.height + below.height + 80), "white")
    boxes = {
        LEFT: [10, 10, 10 + left.width, 10 + left.height],
        RIGHT: [50 + left.width, 10, 50 + left.width + right.width, 10 + right.height],
        BELOW: [10, 50 + left.height, 10 + below.width, 50 + left.height + below.height],
    }
    for image, text in ((left, LEFT), (right, RIGHT), (below, BELOW)):
        page.paste(image, tuple(boxes[text][:2]))
    # Boxes drawn inside the white margin of each rendering: cut with the line margin the worker adds,
    # each crop is close to the rendering the tiny model learned to read.
    return page, {text: [x0 + 4, y0 + 4, x1 - 4, y1 - 4] for text, (x0, y0, x1, y1) in boxes.items()}


def _quad(box: list[int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


@pytest.fixture
def badly_found(app: Flask, reviewer: FlaskClient, recognizer: Recognizer) -> dict:
    """A read page whose line finder was wrong: one line over both texts of the top row, the bottom text missed."""
    image, boxes = _form()
    job_id = reviewer.post("/api/v1/jobs", data={"files": [(io.BytesIO(encode(image)), "form.png")]}).get_json()["id"]
    page_id = reviewer.get(f"/api/v1/jobs/{job_id}").get_json()["pages"][0]["id"]
    wrong = [FoundLine(_quad([boxes[LEFT][0], boxes[LEFT][1], boxes[RIGHT][2], boxes[LEFT][3]]), 0.9)]
    assert prepare_page(_db(app), page_id, PageLimits(10**7, 150), lambda page: wrong)
    recognize_pages(_db(app), recognizer, [page_id])
    drain(app.extensions["inkwell"]["celery"], QUEUE_LINES)
    return {"job_id": job_id, "page_id": page_id, "boxes": boxes}


def _sent_for_reading(app: Flask) -> list[int]:
    messages = drain(app.extensions["inkwell"]["celery"], QUEUE_LINES)
    assert all(name == TASK_READ_LINES for name, _ in messages)
    return [line_id for _, args in messages for line_id in args[0]]


def test_a_badly_found_page_is_repaired_and_read_again(
    app: Flask, reviewer: FlaskClient, recognizer: Recognizer, badly_found: dict
) -> None:
    page_id, boxes = badly_found["page_id"], badly_found["boxes"]
    (wrong,) = reviewer.get(f"/api/v1/pages/{page_id}/lines").get_json()["lines"]

    # draw the missed bottom line: it waits to be read, and is read by the worker's function
    drawn = reviewer.post(f"/api/v1/pages/{page_id}/lines", json={"bbox": boxes[BELOW]})
    assert drawn.status_code == 201, drawn.get_json()
    body = drawn.get_json()
    (new_id,) = body["changed"]
    assert body["queued"] and [line["number"] for line in body["lines"]] == [1, 2]
    assert [line["id"] for line in body["lines"]] == [wrong["id"], new_id]  # reading order: top row first
    assert body["lines"][1]["model_text"] is None
    assert _sent_for_reading(app) == [new_id]
    assert read_lines_again(_db(app), recognizer, [new_id]) == 1

    # split the wrong line between the two texts: two lines, both read again
    with _db(app).session() as session:  # the line finder's classifier was unsure of its type
        session.get(Line, wrong["id"]).text_type_confidence = 0.6
    cut = (boxes[LEFT][2] + boxes[RIGHT][0]) // 2
    split = reviewer.post(f"/api/v1/lines/{wrong['id']}/split", json={"at": cut, "axis": "x"}).get_json()
    assert split["changed"][0] == wrong["id"] and len(split["lines"]) == 3
    assert [line["id"] for line in split["lines"]] == [wrong["id"], split["changed"][1], new_id]
    assert [line["text_type_confidence"] for line in split["lines"][:2]] == [0.6, 0.6]  # as unsure as the whole
    assert sorted(_sent_for_reading(app)) == sorted(split["changed"])
    read_lines_again(_db(app), recognizer, split["changed"])

    lines = reviewer.get(f"/api/v1/pages/{page_id}/lines").get_json()["lines"]
    # each line is the model's reading of its new crop (the tiny test model is too fragile to read
    # crops of a JPEG page exactly, so the test compares with the model run on the stored crop)
    for line in lines:
        crop = Image.open(io.BytesIO(reviewer.get(f"/api/v1/lines/{line['id']}/image").data)).convert("RGB")
        assert line["model_text"] == recognizer.recognize([crop])[0].text
        assert line["confidence"] is not None and not line["reviewed"]
    assert all(line["model_text"] is not None and line["tokens"] for line in lines)
    image = reviewer.get(f"/api/v1/lines/{lines[1]['id']}/image")
    assert (
        image.status_code == 200 and Image.open(io.BytesIO(image.data)).width < boxes[RIGHT][2] - cut + 20
    )  # cut again: the right half only
    assert reviewer.get(f"/api/v1/lines/{lines[1]['id']}/attention").get_json()["maps"]

    # merge the two halves back; the history of the kept line says what happened
    merged = reviewer.post(
        f"/api/v1/pages/{page_id}/lines/merge", json={"line_ids": [lines[1]["id"], lines[0]["id"]]}
    ).get_json()
    assert merged["changed"] == [lines[0]["id"]] and len(merged["lines"]) == 2
    assert merged["lines"][0]["bbox"] == [boxes[LEFT][0], boxes[LEFT][1], boxes[RIGHT][2], boxes[LEFT][3]]
    history = reviewer.get(f"/api/v1/lines/{lines[0]['id']}").get_json()["history"]
    assert [h["action"] for h in history] == ["split", "merged"]
    assert history[0]["previous_bbox"] == wrong["bbox"] and history[0]["bbox"][2] == cut
    _sent_for_reading(app)

    # move the drawn line's box; a move with the same box changes nothing
    moved_box = [boxes[BELOW][0], boxes[BELOW][1] - 2, boxes[BELOW][2] + 4, boxes[BELOW][3] + 2]
    moved = reviewer.patch(f"/api/v1/lines/{new_id}", json={"bbox": moved_box}).get_json()
    assert moved["bbox"] == moved_box and moved["model_text"] is None and moved["history"][-1]["action"] == "moved"
    assert _sent_for_reading(app) == [new_id]
    assert reviewer.patch(f"/api/v1/lines/{new_id}", json={"bbox": moved_box}).status_code == 200
    assert _sent_for_reading(app) == []
    # a correction of a line being read again is refused until it has been read
    assert reviewer.patch(f"/api/v1/lines/{new_id}", json={"text": "x"}).status_code == 409

    # delete it: gone, renumbered, recorded
    deleted = reviewer.delete(f"/api/v1/lines/{new_id}").get_json()
    assert [line["number"] for line in deleted["lines"]] == [1]
    with _db(app).session() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "line.deleted"))
        assert entry.line_id == new_id and entry.details["bbox"] == moved_box and entry.actor.startswith("token:")
        assert session.get(Page, page_id).line_count == 1 and session.get(LineImage, new_id) is None
        job = session.get(Job, badly_found["job_id"])
        assert job.line_count == 1


def test_bad_edits_are_refused_with_the_error_shape(reviewer: FlaskClient, badly_found: dict) -> None:
    page_id = badly_found["page_id"]
    (line,) = reviewer.get(f"/api/v1/pages/{page_id}/lines").get_json()["lines"]
    cases = [
        (reviewer.post(f"/api/v1/pages/{page_id}/lines", json={"bbox": [1, 2, 3]}), 400, "invalid_body"),
        (reviewer.post(f"/api/v1/pages/{page_id}/lines", json={"bbox": [5, 5, 6, 6]}), 409, "invalid_line_edit"),
        (
            reviewer.post(f"/api/v1/pages/{page_id}/lines", json={"bbox": [-50, -50, -10, -10]}),
            409,
            "invalid_line_edit",
        ),
        (
            reviewer.post(f"/api/v1/lines/{line['id']}/split", json={"at": line["bbox"][0] + 1}),
            409,
            "invalid_line_edit",
        ),
        (reviewer.post(f"/api/v1/lines/{line['id']}/split", json={"at": 50, "axis": "z"}), 400, "invalid_body"),
        (
            reviewer.post(f"/api/v1/pages/{page_id}/lines/merge", json={"line_ids": [line["id"], line["id"]]}),
            400,
            "invalid_body",
        ),
        (
            reviewer.post(f"/api/v1/pages/{page_id}/lines/merge", json={"line_ids": [line["id"], 999999]}),
            404,
            "not_found",
        ),
        (reviewer.patch(f"/api/v1/lines/{line['id']}", json={"bbox": "nowhere"}), 400, "invalid_body"),
        (reviewer.delete("/api/v1/lines/999999"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (response.status_code, response.get_json())
        assert response.get_json()["error"]["code"] == code


def test_other_tokens_pages_are_404_and_missing_scopes_403(app: Flask, badly_found: dict) -> None:
    page_id = badly_found["page_id"]
    with _db(app).session() as session:
        line_id = session.scalar(select(Line.id).where(Line.page_id == page_id))
    calls = [
        lambda c: c.post(f"/api/v1/pages/{page_id}/lines", json={"bbox": [10, 10, 60, 40]}),
        lambda c: c.get(f"/api/v1/pages/{page_id}/lines"),
        lambda c: c.patch(f"/api/v1/lines/{line_id}", json={"bbox": [10, 10, 60, 40]}),
        lambda c: c.post(f"/api/v1/lines/{line_id}/split", json={"at": 30}),
        lambda c: c.post(f"/api/v1/pages/{page_id}/lines/merge", json={"line_ids": [line_id, line_id + 1]}),
        lambda c: c.delete(f"/api/v1/lines/{line_id}"),
        lambda c: c.delete(f"/api/v1/jobs/{badly_found['job_id']}"),
    ]
    everything = api_client(app, ["read", "review", "delete"])
    for call in calls:
        response = call(everything)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
    readonly = api_client(app, ["read"], all_jobs=True)
    for call in calls:
        response = call(readonly)
        if response.request.method == "GET":
            assert response.status_code == 200
        else:
            assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden", (
                response.get_json()
            )
    with _db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Line).where(Line.page_id == page_id)) == 1


def test_a_job_is_deleted_with_all_its_data_and_audited(app: Flask, reviewer: FlaskClient, badly_found: dict) -> None:
    job_id = badly_found["job_id"]
    assert reviewer.delete(f"/api/v1/jobs/{job_id}").status_code == 403  # submit, read, review: no delete
    deleter = api_client(app, ["read", "delete"], all_jobs=True)
    response = deleter.delete(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"id": job_id, "deleted": True, "files": ["form.png"], "pages": 1, "lines": 1}
    assert deleter.get(f"/api/v1/jobs/{job_id}").status_code == 404
    assert deleter.delete(f"/api/v1/jobs/{job_id}").status_code == 404
    with _db(app).session() as session:
        for table in (Job, Upload, Page, Line, LineImage):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "job.deleted"))
        assert entry.job_id == job_id and entry.details["files"] == ["form.png"] and entry.actor.startswith("token:")


def test_the_sweeper_sends_again_edited_lines_whose_message_was_lost(
    app: Flask, reviewer: FlaskClient, badly_found: dict
) -> None:
    page_id, boxes = badly_found["page_id"], badly_found["boxes"]
    (new_id,) = reviewer.post(f"/api/v1/pages/{page_id}/lines", json={"bbox": boxes[BELOW]}).get_json()["changed"]
    celery = app.extensions["inkwell"]["celery"]
    assert _sent_for_reading(app) == [new_id]  # taken off the queue: the message is lost
    sweep(_db(app), celery, stale_after=3600)
    assert _sent_for_reading(app) == []  # edited just now: not lost yet
    sweep(_db(app), celery, stale_after=0.0001)
    assert _sent_for_reading(app) == [new_id]


def test_line_readings_waiting_on_redis_are_seen_by_the_sweeper(tmp_path: Path, redis_url: str) -> None:
    celery = make_celery(make_settings(tmp_path, broker_url=redis_url))
    assert enqueue_line_reading(celery, [5, 7])
    assert held_arguments(celery, QUEUE_LINES, TASK_READ_LINES) == {(5, 7)}  # so lines 5 and 7 are not lost
    assert drain(celery, QUEUE_LINES) == [(TASK_READ_LINES, [[5, 7]])]
