"""Lines carry their text type (printed or handwritten) and its confidence; pages their stage timings

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Set by the line finder's printed/handwritten classifier when a page is cut into lines; lines
stored before this revision have none (NULL), and are treated as handwritten by the review
list and the fields (they were all read as handwriting). ``pages.timings`` holds the seconds
each stage took for the page (queue waits, decoding, line finding, reading, database writes),
for the throughput benchmark and for operators.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lines") as batch:
        batch.add_column(sa.Column("text_type", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("text_type_confidence", sa.Float(), nullable=True))
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("timings", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pages") as batch:
        batch.drop_column("timings")
    with op.batch_alter_table("lines") as batch:
        batch.drop_column("text_type_confidence")
        batch.drop_column("text_type")
