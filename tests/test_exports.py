"""Exports of a finished job: CSV, ALTO v4 and PAGE XML 2019 validated against the official schemas."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from inkwell.db import Database
from inkwell.exports import export_alto, export_csv, export_fields_csv, export_page_xml_zip, words
from inkwell.jobs import AcceptedFile, create_job, refresh_job
from inkwell.models import Job, Line, PageStatus
from inkwell.results import load_job


def _finished_job(db: Database) -> str:
    with db.session() as session:
        job = create_job(
            session,
            [
                AcceptedFile("form.pdf", "application/pdf", b"%PDF", ((1000, 1400), (1000, 1400))),
                AcceptedFile("note.png", "image/png", b"png", ((600, 80),)),
            ],
            "api",
        )
        first, second, third = job.pages
        session.add_all(
            [
                Line(
                    page_id=first.id,
                    number=1,
                    bbox=[100, 100, 500, 140],
                    polygon=[[100, 102], [500, 98], [501, 138], [101, 142]],
                    detection_confidence=0.9,
                    text="Name: Jane Doe",
                    confidence=0.8,
                    text_type="printed",
                    text_type_confidence=0.97,
                    tokens=[{"text": c, "confidence": 0.5 if c == "J" else 0.9} for c in "Name: Jane Doe"],
                ),
                Line(
                    page_id=first.id,
                    number=2,
                    bbox=[100, 200, 300, 240],
                    text="Paris & <Lyon>",
                    confidence=0.6,
                    text_type="handwritten",
                    text_type_confidence=0.88,
                    tokens=[{"text": "Paris & <Lyon>", "confidence": 0.6}],
                    corrected_text='Paris & "Lyon"',
                ),
                Line(page_id=third.id, number=1, bbox=[0, 0, 600, 80], text="", confidence=0.1, tokens=[]),
            ]
        )
        for page in (first, third):
            page.status, page.line_count = PageStatus.SUCCEEDED, len([1 for _ in range(2 if page is first else 1)])
        second.status, second.error = PageStatus.FAILED, "cannot be decoded"
        session.flush()
        refresh_job(session, job)
        return job.id


@pytest.fixture
def job(database: Database) -> Job:
    job_id = _finished_job(database)
    with database.session() as session:
        return load_job(session, job_id)


def test_csv_has_a_row_per_line_with_the_final_text(job: Job) -> None:
    rows = list(csv.DictReader(io.StringIO(export_csv(job))))
    assert [(r["page"], r["line"], r["text"], r["corrected"]) for r in rows] == [
        ("1", "1", "Name: Jane Doe", "no"),
        ("1", "2", 'Paris & "Lyon"', "yes"),
        ("3", "1", "", "no"),
    ]
    assert rows[0]["x0"] == "100" and rows[0]["confidence"] == "0.8000" and rows[2]["file"] == "note.png"
    assert [(r["text_type"], r["text_type_confidence"]) for r in rows] == [
        ("printed", "0.9700"),
        ("handwritten", "0.8800"),
        ("", ""),
    ]


def test_fields_csv_pairs_each_label_with_its_corrected_value(job: Job) -> None:
    rows = list(csv.DictReader(io.StringIO(export_fields_csv(job))))
    assert [(r["page"], r["key"], r["value"], r["corrected"], r["key_line"], r["value_lines"]) for r in rows] == [
        ("1", "Name: Jane Doe", 'Paris & "Lyon"', "yes", "1", "2")
    ]
    assert rows[0]["confidence"] == "1.0000"  # a corrected line counts as certain
    assert [rows[0][c] for c in ("x0", "y0", "x1", "y1")] == ["100", "100", "500", "240"]


def test_words_follow_the_line_polygon_and_token_confidences(job: Job) -> None:
    line = job.pages[0].lines[0]
    found = words(line)
    assert [w.text for w in found] == ["Name:", "Jane", "Doe"]
    assert found[0].box[0] == pytest.approx(100, abs=1) and found[-1].box[2] == pytest.approx(501, abs=1)
    assert found[1].confidence == pytest.approx((0.5 * 0.9**3) ** 0.25)
    assert words(job.pages[0].lines[1])[0].confidence is None  # corrected: the model's tokens no longer apply


def test_alto_is_valid_v4(job: Job, xml_schemas) -> None:
    document = export_alto(job)
    xml_schemas["alto"].validate(document.decode())
    text = document.decode()
    assert 'CONTENT="Jane"' in text and 'CONTENT="&quot;Lyon&quot;"' in text and 'WC="' in text
    assert text.count("<Page ") == 2  # the failed page is left out
    assert 'TAGREFS="TYPE_printed"' in text and 'TAGREFS="TYPE_handwritten"' in text and 'LABEL="handwritten"' in text


def test_page_xml_is_valid_2019_one_file_per_page(job: Job, xml_schemas) -> None:
    archive = zipfile.ZipFile(io.BytesIO(export_page_xml_zip(job)))
    assert archive.namelist() == ["page-0001.xml", "page-0003.xml"]
    for name in archive.namelist():
        xml_schemas["page"].validate(archive.read(name).decode())
    first = archive.read("page-0001.xml").decode()
    assert 'imageFilename="form.pdf#page=1"' in first and "<Unicode>Jane</Unicode>" in first and "&lt;" not in first
    assert 'production="printed" custom="textType {type:printed; confidence:0.9700;}"' in first
    assert 'custom="textType {type:handwritten; confidence:0.8800;}"' in first


def test_word_boxes_follow_the_attention_when_there_is_some(database: Database) -> None:
    import numpy as np

    from inkwell.arrays import pack_array

    text = "ab cd"
    # the model looked at column 1 for "a", 2 for "b", 3 for " ", 8 for "c", 9 for "d" (10 columns)
    maps = np.zeros((5, 1, 10), np.float32)
    for token, column in enumerate((1, 2, 3, 8, 9)):
        maps[token, 0, column] = 1.0
    with database.session() as session:
        job = create_job(session, [AcceptedFile("l.png", "image/png", b"png", ((100, 20),))], "api", "line")
        line = Line(
            page_id=job.pages[0].id,
            number=1,
            bbox=[0, 0, 100, 20],
            text=text,
            confidence=0.9,
            tokens=[{"text": c, "confidence": 0.9} for c in text],
            attention=pack_array(maps),
        )
        session.add(line)
        session.flush()
        first, second = words(line)
        # proportional would put "cd" at 60..100; attention puts it at columns 8-9, around 75..100
        assert first.box[0] == pytest.approx(10, abs=6) and first.box[2] == pytest.approx(30, abs=6)
        assert second.box[0] == pytest.approx(80, abs=6) and second.box[2] == pytest.approx(100, abs=1)
        line.corrected_text = "ab cd"
        assert words(line)[1].box[0] == pytest.approx(60, abs=1)  # corrected: by character count
