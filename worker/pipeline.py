"""The work on a page, as plain functions over the database, the line finder and the recognizer.

``prepare_page`` runs on the CPU queue ``pages``: rasterise the page, find its lines, cut them out,
store the page image, the lines and their images. ``recognize_pages`` runs on the model queue
``lines``: read the lines of many pages in one batched call and write each page's results in its
own transaction. Both are idempotent, so a message delivered twice (after a worker crash) leaves
the same rows as one delivery. No database session stays open while a model runs.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from sqlalchemy import delete, select, update

from inkwell.arrays import pack_array
from inkwell.db import Database
from inkwell.jobs import mark_job_started, refresh_job
from inkwell.models import CallbackState, Job, Line, Page, PageStatus, Upload, utcnow
from inkwell.storage import line_images, put_line_image, put_page_image, upload_bytes
from worker import metrics
from worker.line_finder import FoundLine, crop_line, page_pixels
from worker.line_result import LineResult, checked_results
from worker.page_image import PageDecodeError, encode_jpeg, encode_png, render_page

if TYPE_CHECKING:  # the model (and torch) is loaded only by workers of the "lines" queue
    from worker.recognizer import Recognizer

log = logging.getLogger(__name__)

LineFinderFn = Callable[[Image.Image], list[FoundLine]]


@dataclass(frozen=True)
class PageLimits:
    max_pixels: int
    dpi: int
    max_attempts: int = 3


def _gave_up(attempts: int) -> str:
    return (
        f"processing this page stopped its worker {attempts - 1} times (killed, or out of memory); "
        "it was not tried again"
    )


@dataclass(frozen=True)
class CutLine:
    """A line ready to store: where it is on the page and its straightened image."""

    bbox: tuple[int, int, int, int]
    polygon: list[list[int]] | None
    detection_confidence: float | None
    image: Image.Image
    text_type: str | None = None
    text_type_confidence: float | None = None


def cut_lines(
    page: Image.Image, layout: str, find_lines: LineFinderFn, pixels: np.ndarray | None = None
) -> list[CutLine]:
    """The page's lines: found and cut out (``layout='page'``), or the whole image as one line.

    ``pixels``: the page's ``page_pixels`` when the caller has them already (lines are cut from
    them, grey when the page is grey).
    """
    if layout == "line":
        return [
            CutLine((0, 0, page.width, page.height), None, None, page if pixels is None else Image.fromarray(pixels))
        ]

    def inside(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = box
        return max(0, x0), max(0, y0), min(page.width, x1), min(page.height, y1)

    found_lines = find_lines(page)
    if found_lines and pixels is None:
        pixels = page_pixels(page)
    return [
        CutLine(
            inside(found.bbox),
            found.polygon(),
            found.score,
            crop_line(pixels, found),
            found.text_type,
            found.text_type_confidence,
        )
        for found in found_lines
    ]


@dataclass(frozen=True)
class CutPage:
    """One page of an upload as an upright image (and its pixels) and its lines, with what each step took."""

    image: Image.Image
    pixels: np.ndarray  # page_pixels(image): grey for a grey page; the lines and the page's JPEG come from it
    lines: list[CutLine]
    decode_seconds: float
    detection_seconds: float


def cut_page(
    data: bytes, media_type: str, index: int, layout: str, limits: PageLimits, find_lines: LineFinderFn
) -> CutPage:
    """Page ``index`` of an upload rasterised and cut into lines: the CPU half of reading a page,
    run by the ``pages`` workers (``prepare_page``) and by ``inkwell recognize`` alike."""
    started = time.perf_counter()
    image = render_page(data, media_type, index, limits.max_pixels, limits.dpi)
    decoded = time.perf_counter()
    pixels = page_pixels(image)  # converted once: lines are cut from it, the page's JPEG made from it
    lines = cut_lines(image, layout, find_lines, pixels)
    return CutPage(image, pixels, lines, decoded - started, time.perf_counter() - decoded)


def read_lines(recognizer: Recognizer, images: list[Image.Image], capture: bool = True) -> list[LineResult]:
    """The model half of reading a page: one result per line image, in order, or RecognitionError.

    Run by the ``lines`` workers (``recognize_pages``) and by ``inkwell recognize`` alike.
    """
    return checked_results(recognizer.recognize(images, capture), len(images))


def fail_page(db: Database, page_id: int, reason: str, reason_code: str | None = None) -> None:
    """Mark one page failed with ``reason`` and recount its job.

    ``reason_code`` is its metrics label, where it cannot be told from ``reason``.
    """
    with db.session() as session:
        page = session.get(Page, page_id)
        if page is None or page.status.finished:
            return
        job = session.get(Job, page.job_id, with_for_update=True)
        page.status = PageStatus.FAILED
        page.error = reason
        page.finished_at = utcnow()
        refresh_job(session, job)
    log.warning("page %s failed: %s", page_id, reason)
    metrics.page_failed(reason, reason_code)


def prepare_page(db: Database, page_id: int, limits: PageLimits, find_lines: LineFinderFn) -> bool:
    """Rasterise a queued page, find and cut out its lines; True when it is ready to be read.

    A page already prepared (a redelivered message) is reported ready again so its recognition
    message is re-sent; a finished or vanished page is left alone.
    """
    with db.session() as session:
        page = session.get(Page, page_id)
        if page is None or page.status.finished:
            return False
        job = session.get(Job, page.job_id, with_for_update=True)
        # Read the page again under the job's lock: a duplicate delivery may have prepared it
        # (and reset its count) while this one waited, and must not count on a stale row.
        session.refresh(page)
        if page.status != PageStatus.QUEUED:
            return page.status == PageStatus.PREPARED
        mark_job_started(job)
        waited = _since(page.queued_at)
        # Counted before the work, committed: if the work kills the process, the next delivery knows.
        page.attempts = Page.attempts + 1  # in SQL, not from the value read
        session.flush()
        session.refresh(page)
        attempts = page.attempts
        upload = session.get(Upload, page.upload_id)
        media_type, index, layout = upload.media_type, page.source_index, job.layout
    if attempts > limits.max_attempts:
        fail_page(db, page_id, _gave_up(attempts))
        return False
    with db.session() as session:
        data = upload_bytes(session, page.upload_id)
    if data is None:
        fail_page(db, page_id, "the page's file is missing")
        return False
    try:
        cut = cut_page(data, media_type, index, layout, limits, find_lines)
        del data
    except PageDecodeError as error:
        fail_page(db, page_id, str(error), "undecodable")
        return False
    except MemoryError:
        fail_page(db, page_id, "not enough memory to process this page")
        return False
    image, lines = cut.image, cut.lines
    found = time.perf_counter()
    encoded = [encode_png(line.image) for line in lines]
    page_jpeg = encode_jpeg(Image.fromarray(cut.pixels))
    with db.session() as session:
        page = session.get(Page, page_id)
        if page is None or page.status != PageStatus.QUEUED:
            return page is not None and page.status == PageStatus.PREPARED
        job = session.get(Job, page.job_id, with_for_update=True)
        session.execute(delete(Line).where(Line.page_id == page_id))
        rows = [
            Line(
                page_id=page_id,
                number=number,
                bbox=list(line.bbox),
                polygon=line.polygon,
                detection_confidence=line.detection_confidence,
                text_type=line.text_type,
                text_type_confidence=line.text_type_confidence,
            )
            for number, line in enumerate(lines, start=1)
        ]
        session.add_all(rows)
        session.flush()  # one INSERT of all the rows for their ids, not a round trip per line
        for row, png in zip(rows, encoded, strict=True):
            put_line_image(session, row, png)
        put_page_image(session, page, page_jpeg, "image/jpeg")
        page.width, page.height = image.size
        page.line_count = len(lines)
        page.status = PageStatus.PREPARED
        page.timings = {
            "pages_queue": round(waited, 4),
            "decode": round(cut.decode_seconds, 4),
            "detection": round(cut.detection_seconds, 4),
            "store_lines": round(time.perf_counter() - found, 4),
        }  # (PNG encoding and the rows, before the commit)
        page.attempts = 0  # the reading stage counts its own attempts
        page.queued_at = utcnow()  # its message for the "lines" queue is sent right after this commit
        refresh_job(session, job)
    return True


@dataclass
class _PageWork:
    page_id: int
    line_ids: list[int]
    images: list[Image.Image]
    read_seconds: float = 0.0  # its share of the batched model run (by line count)


def _charge(db: Database, page_ids: list[int], max_attempts: int) -> list[int]:
    """Count one attempt for each prepared page about to be read (committed before the model runs).

    Only the pages of the model call that is about to start are charged, so when its process dies
    exactly the pages being read carry the extra attempt; pages merely waiting in the batch do not.
    The increment is done in SQL under the pages' row locks, never from a value read earlier.
    Returns the pages to read; those past ``max_attempts`` are failed instead.
    """
    if not page_ids:
        return []
    with db.session() as session:
        session.execute(
            update(Page)
            .where(Page.id.in_(page_ids), Page.status == PageStatus.PREPARED)
            .values(attempts=Page.attempts + 1)
        )
        counted = dict(
            session.execute(
                select(Page.id, Page.attempts).where(Page.id.in_(page_ids), Page.status == PageStatus.PREPARED)
            ).all()
        )
    for page_id, attempts in counted.items():
        if attempts > max_attempts:
            fail_page(db, page_id, _gave_up(attempts))
    return [page_id for page_id in page_ids if page_id in counted and counted[page_id] <= max_attempts]


def _suspects(db: Database, page_ids: list[int]) -> tuple[list[int], list[int]]:
    """(fresh pages, pages that were being read when a process died before), each prepared page once."""
    with db.session() as session:
        attempts = dict(
            session.execute(
                select(Page.id, Page.attempts).where(Page.id.in_(page_ids), Page.status == PageStatus.PREPARED)
            ).all()
        )
    ordered = [
        page_id for page_id in dict.fromkeys(page_ids) if page_id in attempts
    ]  # a page sent twice in one batch is read once
    return [p for p in ordered if attempts[p] == 0], [p for p in ordered if attempts[p] > 0]


def _load_work(db: Database, page_ids: list[int]) -> list[_PageWork]:
    work: list[_PageWork] = []
    for page_id in page_ids:
        with db.session() as session:
            stored = line_images(session, page_id)
        try:
            images = [Image.open(io.BytesIO(data)).convert("RGB") for _, data in stored]
        except Exception as error:  # noqa: BLE001 - a damaged stored crop fails its page only
            fail_page(db, page_id, f"a line image cannot be decoded ({error})")
            continue
        work.append(_PageWork(page_id, [line_id for line_id, _ in stored], images))
    return work


def _recognize_isolating_failures(
    recognizer: Recognizer, work: list[_PageWork], db: Database
) -> dict[int, list[LineResult]]:
    """Read every page's lines in one call; if that call fails, retry page by page so one bad page fails alone."""
    images = [image for item in work for image in item.images]
    started = time.perf_counter()
    try:
        flat = read_lines(recognizer, images)
        elapsed = time.perf_counter() - started
        for item in work:
            item.read_seconds = elapsed * len(item.images) / max(len(images), 1)
    except Exception:  # noqa: BLE001 - any model failure: find the page that causes it
        log.exception("batched recognition of %d pages failed; retrying page by page", len(work))
        results: dict[int, list[LineResult]] = {}
        for item in work:
            try:
                results[item.page_id] = read_lines(recognizer, item.images)
            except Exception as error:  # noqa: BLE001
                fail_page(db, item.page_id, f"recognition failed: {type(error).__name__}: {error}")
        return results
    results, start = {}, 0
    for item in work:
        results[item.page_id] = flat[start : start + len(item.images)]
        start += len(item.images)
    return results


def _store_page_results(
    db: Database, item: _PageWork, results: list[LineResult], model_name: str, embedding_layer: int | None = None
) -> None:
    started = time.perf_counter()
    with db.session() as session:
        page = session.get(Page, item.page_id)
        if page is None or page.status != PageStatus.PREPARED:
            return  # deleted meanwhile, or already written by another delivery
        waited = _since(page.queued_at)
        job = session.get(Job, page.job_id, with_for_update=True)
        session.refresh(page)  # under the job's lock: another delivery may have written it while this one waited
        if page.status != PageStatus.PREPARED:
            return
        lines = {line.id: line for line in session.scalars(select(Line).where(Line.page_id == item.page_id))}
        now = utcnow()
        embeddings = []
        for line_id, result in zip(item.line_ids, results, strict=True):
            line = lines.get(line_id)
            if line is None:
                continue
            line.text = result.text
            line.confidence = result.confidence
            line.tokens = [{"text": t.text, "confidence": t.confidence} for t in result.tokens]
            line.attention = pack_array(result.attention, "float16") if result.attention.size else None
            line.embedding = pack_array(result.embedding, "float32") if result.embedding.size else None
            line.embedding_layer = embedding_layer
            line.model = model_name
            line.recognized_at = now
            if result.embedding.size:
                embeddings.append(result.embedding)
        if embeddings:
            page.embedding = pack_array(np.mean(embeddings, axis=0), "float32")
            page.embedding_model, page.embedding_layer = model_name, embedding_layer
        page.status = PageStatus.SUCCEEDED
        page.finished_at = now
        page.timings = {
            **(page.timings or {}),
            "lines_queue": round(max(0.0, waited - item.read_seconds), 4),
            "reading": round(item.read_seconds, 4),
            "store_results": round(time.perf_counter() - started, 4),
        }
        job.model = model_name
        refresh_job(session, job)
    metrics.page_read(len(item.line_ids))


def _read_and_store(db: Database, recognizer: Recognizer, page_ids: list[int]) -> None:
    work = _load_work(db, page_ids)
    if not work:
        return
    results = _recognize_isolating_failures(recognizer, work, db)
    layer = getattr(
        recognizer, "embedding_layer", None
    )  # None: the encoder's final output (also for wrappers without it)
    for item in work:
        if item.page_id in results:
            _store_page_results(db, item, results[item.page_id], recognizer.name, layer)


def recognize_pages(db: Database, recognizer: Recognizer, page_ids: list[int], max_attempts: int = 3) -> None:
    """Read all lines of the given prepared pages in one batched model run and store the results.

    A page that was already being read when a worker died (its attempts count it) is read on its
    own, after the others are stored: if it is what kills the worker, it cannot take the rest of
    the batch down with it again, and after ``max_attempts`` it fails with that reason. Each group
    is charged its attempt right before its own model call.
    """
    fresh, suspects = _suspects(db, page_ids)
    _read_and_store(db, recognizer, _charge(db, fresh, max_attempts))
    for page_id in suspects:
        _read_and_store(db, recognizer, _charge(db, [page_id], max_attempts))


def _since(moment) -> float:
    """Seconds from ``moment`` (a stored timestamp, naive on SQLite) to now; 0 without one."""
    if moment is None:
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=utcnow().tzinfo)
    return max(0.0, (utcnow() - moment).total_seconds())


def finished_jobs_with_pending_callbacks(db: Database, page_ids: list[int]) -> list[str]:
    """Jobs of these pages that have finished and still owe their callback."""
    if not page_ids:
        return []
    with db.session() as session:
        rows = session.execute(
            select(Job.id, Job.status)
            .join(Page, Page.job_id == Job.id)
            .where(Page.id.in_(page_ids), Job.callback_state == CallbackState.PENDING.value)
            .distinct()
        ).all()
    return [job_id for job_id, status in rows if status.finished]
