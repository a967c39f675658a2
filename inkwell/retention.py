"""Retention: forms hold personal data, so jobs are deleted (files, images, results) after N days."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from inkwell.db import Database
from inkwell.models import Job, utcnow


def purge(db: Database, days: int, batch: int = 200) -> int:
    """Delete jobs created more than ``days`` days ago, with everything under them; returns how many."""
    if days <= 0:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    removed = 0
    while True:
        with db.session() as session:  # in batches: a big purge never holds one huge transaction
            ids = list(session.scalars(select(Job.id).where(Job.created_at < cutoff).limit(batch)))
            if not ids:
                return removed
            session.execute(delete(Job).where(Job.id.in_(ids)))  # the database cascades to pages, files, lines
            removed += len(ids)
