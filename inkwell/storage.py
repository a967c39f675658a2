"""Where page bytes live: the ``page_files`` table (see README, "Where page bytes live")."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from inkwell.models import Page, PageFile

UPLOAD = "upload"


def put_page_file(session: Session, page: Page, kind: str, data: bytes, media_type: str) -> PageFile:
    """Attach ``data`` to ``page`` as its ``kind`` file (in the caller's transaction)."""
    stored = PageFile(
        kind=kind, media_type=media_type, data=data, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    stored.page_id = page.id
    if page.id is None:
        session.flush()  # the page needs its id before a file can point at it
        stored.page_id = page.id
    session.add(stored)
    return stored


def get_page_file(session: Session, page_id: int, kind: str = UPLOAD) -> PageFile | None:
    """The page's ``kind`` file, or None if the page (or file) is gone."""
    return session.scalar(select(PageFile).where(PageFile.page_id == page_id, PageFile.kind == kind))
