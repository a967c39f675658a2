"""which model and encoder layer each stored embedding comes from

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-29

INKWELL_EMBEDDING_LAYER chooses the encoder layer whose pooled states are stored as embeddings;
similar pages compare only embeddings of the same model and layer. Existing embeddings are the
encoder's final output (layer NULL), and a page's came from its job's model.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_layer", sa.Integer(), nullable=True))
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("embedding_model", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("embedding_layer", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE pages SET embedding_model = (SELECT jobs.model FROM jobs WHERE jobs.id = pages.job_id) WHERE embedding "
        "IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("pages", schema=None) as batch_op:
        batch_op.drop_column("embedding_layer")
        batch_op.drop_column("embedding_model")
    with op.batch_alter_table("lines", schema=None) as batch_op:
        batch_op.drop_column("embedding_layer")
