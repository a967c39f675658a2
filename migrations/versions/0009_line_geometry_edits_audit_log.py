"""line history records geometry edits; an audit log of deletions

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

Reviewers now draw, move, split, merge and delete lines on the review page. ``line_edits`` gains
the kind of edit (``action``: ``text`` for every correction stored before) and the boxes before
and after a geometry edit. ``audit_log`` records deletions (a job with all its data, a line) with
who and when; it has no foreign keys, so it outlives what it describes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("line_edits") as batch:
        batch.add_column(sa.Column("action", sa.String(length=16), server_default="text", nullable=False))
        batch.add_column(sa.Column("bbox", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("previous_bbox", sa.JSON(), nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("line_id", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_job_id"), "audit_log", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_job_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_at"), table_name="audit_log")
    op.drop_table("audit_log")
    with op.batch_alter_table("line_edits") as batch:
        batch.drop_column("previous_bbox")
        batch.drop_column("bbox")
        batch.drop_column("action")
