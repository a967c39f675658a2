"""Trigram indexes for text search on PostgreSQL (pg_trgm), where the extension is available

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

Search matches every word as a case-insensitive substring of the model's or the reviewer's
text (ILIKE '%word%'); a GIN trigram index lets PostgreSQL answer that without reading every
line. SQLite (the single-machine default) scans, which is fine at its scale. The indexes are
not in the models' metadata (they are PostgreSQL-only); migrations/env.py leaves them out of
`alembic check`.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = {"ix_lines_text_trgm": "text", "ix_lines_corrected_text_trgm": "corrected_text"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")).first()
    if available is None:
        return
    savepoint = bind.begin_nested()  # without the right to create extensions, search still works, unindexed
    try:
        bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        savepoint.commit()
    except sa.exc.DBAPIError:
        savepoint.rollback()
        return
    for name, column in INDEXES.items():
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON lines USING gin ({column} gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
