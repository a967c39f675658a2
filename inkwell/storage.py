"""Where bytes live: uploads, page images and line images, all in the database.

See README, "Where page bytes live". Every function works inside the caller's transaction.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from inkwell.models import Job, Line, LineImage, Page, PageFile, Upload

PAGE_IMAGE = "image"


def add_upload(
    session: Session, job: Job, number: int, filename: str, media_type: str, data: bytes, page_count: int
) -> Upload:
    """Store an accepted file of ``job``."""
    upload = Upload(
        number=number,
        filename=filename[:255],
        media_type=media_type,
        data=data,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        page_count=page_count,
    )
    job.uploads.append(upload)
    return upload


def upload_bytes(session: Session, upload_id: int) -> bytes | None:
    """The bytes of an upload, or None if it is gone."""
    return session.scalar(select(Upload.data).where(Upload.id == upload_id))


def put_page_image(session: Session, page: Page, data: bytes, media_type: str) -> None:
    """Store (or replace) the page's upright raster."""
    stored = session.scalar(select(PageFile).where(PageFile.page_id == page.id, PageFile.kind == PAGE_IMAGE))
    if stored is None:
        stored = PageFile(page_id=page.id, kind=PAGE_IMAGE)
        session.add(stored)
    stored.media_type, stored.data, stored.size = media_type, data, len(data)
    stored.sha256 = hashlib.sha256(data).hexdigest()


def page_image(session: Session, page_id: int) -> PageFile | None:
    """The page's upright raster, once the page has been prepared."""
    return session.scalar(select(PageFile).where(PageFile.page_id == page_id, PageFile.kind == PAGE_IMAGE))


def put_line_image(session: Session, line: Line, data: bytes, media_type: str = "image/png") -> None:
    session.add(LineImage(line_id=line.id, media_type=media_type, data=data))


def line_images(session: Session, page_id: int) -> list[tuple[int, bytes]]:
    """(line id, image bytes) of a page's lines, in reading order."""
    rows = session.execute(
        select(Line.id, LineImage.data)
        .join(LineImage, LineImage.line_id == Line.id)
        .where(Line.page_id == page_id)
        .order_by(Line.number)
    )
    return [(line_id, data) for line_id, data in rows]
