"""The work on a page, as plain functions over the database and the recognizer (no Celery here).

``prepare_page`` runs on the CPU queue: decode the stored page and cut it into lines.
``recognize_pages`` runs on the model queue: read the lines of many pages in one batched call and
write each page's results in its own transaction. Both are idempotent, so a message delivered
twice (after a worker crash) leaves the same rows as one delivery. No session stays open while
the model runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image
from sqlalchemy import delete, select

from inkwell.arrays import pack_array
from inkwell.db import Database
from inkwell.jobs import mark_job_started, refresh_job
from inkwell.models import Job, Line, Page, PageStatus, utcnow
from inkwell.storage import get_page_file
from worker.page_image import PageDecodeError, decode_page
from worker.recognizer import LineResult, Recognizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineBox:
    """A line found on a page, in page pixels."""

    bbox: tuple[int, int, int, int]
    polygon: list[list[int]] | None = None
    detection_confidence: float | None = None


def find_lines(image: Image.Image) -> list[LineBox]:
    """Where the text lines of a page are. For now the whole image is one line."""
    return [LineBox((0, 0, image.width, image.height))]


def _fail_page(db: Database, page_id: int, reason: str) -> None:
    with db.session() as session:
        page = session.get(Page, page_id)
        if page is None:
            return
        job = session.get(Job, page.job_id, with_for_update=True)
        page.status = PageStatus.FAILED
        page.error = reason
        page.finished_at = utcnow()
        refresh_job(session, job)
    log.warning("page %s failed: %s", page_id, reason)


def prepare_page(db: Database, page_id: int, max_pixels: int) -> bool:
    """Decode a queued page and store its (not yet read) lines; True when it is ready to be read.

    A page already prepared (a redelivered message) is reported ready again so its recognition
    message is re-sent; a finished or vanished page is left alone.
    """
    with db.session() as session:
        page = session.get(Page, page_id)
        if page is None or page.status.finished:
            return False
        if page.status == PageStatus.PREPARED:
            return True
        job = session.get(Job, page.job_id, with_for_update=True)
        mark_job_started(job)
        stored = get_page_file(session, page_id)
        data = stored.data if stored is not None else None
    if data is None:
        _fail_page(db, page_id, "the page's file is missing")
        return False
    try:
        image = decode_page(data, max_pixels)
    except PageDecodeError as error:
        _fail_page(db, page_id, str(error))
        return False
    boxes = find_lines(image)
    with db.session() as session:
        page = session.get(Page, page_id)
        if page is None or page.status != PageStatus.QUEUED:
            return page is not None and page.status == PageStatus.PREPARED
        job = session.get(Job, page.job_id, with_for_update=True)
        session.execute(delete(Line).where(Line.page_id == page_id))
        for number, box in enumerate(boxes, start=1):
            session.add(Line(page_id=page_id, number=number, bbox=list(box.bbox), polygon=box.polygon, detection_confidence=box.detection_confidence))
        page.width, page.height = image.size
        page.line_count = len(boxes)
        page.status = PageStatus.PREPARED
        refresh_job(session, job)
    return True


@dataclass
class _PageWork:
    page_id: int
    line_ids: list[int]
    crops: list[Image.Image]


def _load_work(db: Database, page_ids: list[int], max_pixels: int) -> list[_PageWork]:
    work: list[_PageWork] = []
    for page_id in dict.fromkeys(page_ids):  # a page sent twice in one batch is read once
        with db.session() as session:
            page = session.get(Page, page_id)
            if page is None or page.status != PageStatus.PREPARED:
                continue
            lines = session.execute(select(Line.id, Line.bbox).where(Line.page_id == page_id).order_by(Line.number)).all()
            stored = get_page_file(session, page_id)
            data = stored.data if stored is not None else None
        if data is None:
            _fail_page(db, page_id, "the page's file is missing")
            continue
        try:
            image = decode_page(data, max_pixels)
        except PageDecodeError as error:
            _fail_page(db, page_id, str(error))
            continue
        work.append(_PageWork(page_id, [line_id for line_id, _ in lines], [image.crop(tuple(bbox)) for _, bbox in lines]))
    return work


def _recognize_isolating_failures(recognizer: Recognizer, work: list[_PageWork], db: Database) -> dict[int, list[LineResult]]:
    """Read every page's lines in one call; if that call fails, retry page by page so one bad page fails alone."""
    crops = [crop for item in work for crop in item.crops]
    try:
        flat = recognizer.recognize(crops)
    except Exception:  # noqa: BLE001 - any model failure: find the page that causes it
        log.exception("batched recognition of %d pages failed; retrying page by page", len(work))
        results: dict[int, list[LineResult]] = {}
        for item in work:
            try:
                results[item.page_id] = recognizer.recognize(item.crops)
            except Exception as error:  # noqa: BLE001
                _fail_page(db, item.page_id, f"recognition failed: {type(error).__name__}: {error}")
        return results
    results, start = {}, 0
    for item in work:
        results[item.page_id] = flat[start : start + len(item.crops)]
        start += len(item.crops)
    return results


def _store_page_results(db: Database, item: _PageWork, results: list[LineResult], model_name: str) -> None:
    with db.session() as session:
        page = session.get(Page, item.page_id)
        if page is None or page.status != PageStatus.PREPARED:
            return  # deleted meanwhile, or already written by another delivery
        job = session.get(Job, page.job_id, with_for_update=True)
        lines = {line.id: line for line in session.scalars(select(Line).where(Line.page_id == item.page_id))}
        now = utcnow()
        embeddings = []
        for line_id, result in zip(item.line_ids, results):
            line = lines.get(line_id)
            if line is None:
                continue
            line.text = result.text
            line.confidence = result.confidence
            line.tokens = [{"text": t.text, "confidence": t.confidence} for t in result.tokens]
            line.attention = pack_array(result.attention, "float16") if result.attention.size else None
            line.embedding = pack_array(result.embedding, "float32") if result.embedding.size else None
            line.model = model_name
            line.recognized_at = now
            if result.embedding.size:
                embeddings.append(result.embedding)
        if embeddings:
            page.embedding = pack_array(np.mean(embeddings, axis=0), "float32")
        page.status = PageStatus.SUCCEEDED
        page.finished_at = now
        job.model = model_name
        refresh_job(session, job)


def recognize_pages(db: Database, recognizer: Recognizer, page_ids: list[int], max_pixels: int) -> None:
    """Read all lines of the given prepared pages in one batched model run and store the results."""
    work = _load_work(db, page_ids, max_pixels)
    if not work:
        return
    results = _recognize_isolating_failures(recognizer, work, db)
    for item in work:
        if item.page_id in results:
            _store_page_results(db, item, results[item.page_id], recognizer.name)
