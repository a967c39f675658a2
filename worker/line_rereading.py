"""Reading again the lines a reviewer drew or reshaped: cut each from the stored page image with its
new box, read them in one model call, store the results. A plain function (the task is a thin
wrapper); no database session stays open while the model runs.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from sqlalchemy import select

from inkwell.arrays import pack_array
from inkwell.db import Database
from inkwell.jobs import refresh_job
from inkwell.models import Job, Line, Page, utcnow
from inkwell.storage import delete_line_image, page_image, put_line_image
from worker.line_finder import FoundLine, crop_line
from worker.page_image import encode_png
from worker.pipeline import read_lines

if TYPE_CHECKING:
    from worker.recognizer import Recognizer

log = logging.getLogger(__name__)


@dataclass
class _Cut:
    line_id: int
    bbox: list[int]
    image: Image.Image


def _cut(db: Database, line_ids: list[int]) -> list[_Cut]:
    """Cut each line (still waiting to be read) out of its page image, and store the new crop."""
    cuts: list[_Cut] = []
    pages: dict[int, Image.Image | None] = {}
    with db.session() as session:
        lines = list(session.scalars(select(Line).where(Line.id.in_(line_ids), Line.text.is_(None))))
        for line in lines:
            if line.page_id not in pages:
                stored = page_image(session, line.page_id)
                pages[line.page_id] = Image.open(io.BytesIO(stored.data)).convert("RGB") if stored is not None else None
            page = pages[line.page_id]
            if page is None:
                log.warning("line %s: its page has no stored image; it cannot be read again", line.id)
                continue
            quad = np.array(
                line.polygon
                or [
                    [line.bbox[0], line.bbox[1]],
                    [line.bbox[2], line.bbox[1]],
                    [line.bbox[2], line.bbox[3]],
                    [line.bbox[0], line.bbox[3]],
                ],
                dtype=np.float32,
            )
            image = crop_line(
                page, FoundLine(quad, 1.0)
            )  # the same margin as detected lines, so attention maps line up
            delete_line_image(session, line.id)
            put_line_image(session, line, encode_png(image))
            cuts.append(_Cut(line.id, list(line.bbox), image))
    return cuts


def read_lines_again(db: Database, recognizer: Recognizer, line_ids: list[int]) -> int:
    """Cut and read the given lines; returns how many were stored.

    A line edited again meanwhile (its box differs from the one cut) is skipped: the later edit
    sent its own message. A line deleted meanwhile is skipped too.
    """
    cuts = _cut(db, list(dict.fromkeys(line_ids)))
    if not cuts:
        return 0
    results = read_lines(recognizer, [cut.image for cut in cuts])
    layer = getattr(recognizer, "embedding_layer", None)
    stored = 0
    with db.session() as session:
        now, pages = utcnow(), set()
        for cut, result in zip(cuts, results, strict=True):
            line = session.get(Line, cut.line_id)
            if line is None or list(line.bbox) != cut.bbox:
                continue
            line.text, line.confidence = result.text, result.confidence
            line.tokens = [{"text": t.text, "confidence": t.confidence} for t in result.tokens]
            line.attention = pack_array(result.attention, "float16") if result.attention.size else None
            line.embedding = pack_array(result.embedding, "float32") if result.embedding.size else None
            line.embedding_layer, line.model, line.recognized_at = layer, recognizer.name, now
            pages.add(line.page_id)
            stored += 1
        for page_id in pages:
            page = session.get(Page, page_id)
            refresh_job(session, session.get(Job, page.job_id, with_for_update=True))
    return stored
