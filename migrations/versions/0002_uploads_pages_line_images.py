"""Uploads apart from pages (a PDF or TIFF upload has many pages), line images, job layout

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_uploads_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("job_id", "number", name=op.f("uq_uploads_job_id_number")),
    )
    op.create_index(op.f("ix_uploads_job_id"), "uploads", ["job_id"], unique=False)
    op.create_table(
        "line_images",
        sa.Column("line_id", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["lines.id"], name=op.f("fk_line_images_line_id_lines"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("line_id", name=op.f("pk_line_images")),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("layout", sa.String(length=8), nullable=False, server_default="page"))
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("upload_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("source_index", sa.Integer(), nullable=False, server_default="0"))

    # Each page of a 0001 database was one uploaded file, kept as its 'upload' page file.
    connection = op.get_bind()
    old_files = connection.execute(
        sa.text(
            "SELECT p.id, p.job_id, p.number, p.filename, p.media_type, f.size, f.sha256, f.data "
            "FROM pages p JOIN page_files f ON f.page_id = p.id AND f.kind = 'upload'"
        )
    ).all()
    uploads = sa.table(
        "uploads",
        sa.column("id", sa.Integer),
        sa.column("job_id", sa.String),
        sa.column("number", sa.Integer),
        sa.column("filename", sa.String),
        sa.column("media_type", sa.String),
        sa.column("size", sa.Integer),
        sa.column("sha256", sa.String),
        sa.column("page_count", sa.Integer),
        sa.column("data", sa.LargeBinary),
    )
    for page_id, job_id, number, filename, media_type, size, sha256, data in old_files:
        upload_id = connection.execute(
            uploads.insert()
            .values(
                job_id=job_id,
                number=number,
                filename=filename,
                media_type=media_type,
                size=size,
                sha256=sha256,
                page_count=1,
                data=data,
            )
            .returning(uploads.c.id)
        ).scalar_one()
        connection.execute(sa.text("UPDATE pages SET upload_id = :u WHERE id = :p"), {"u": upload_id, "p": page_id})
    connection.execute(sa.text("DELETE FROM page_files WHERE kind = 'upload'"))
    connection.execute(sa.text("DELETE FROM pages WHERE upload_id IS NULL"))  # a page without its file cannot be read

    with op.batch_alter_table("pages") as batch:
        batch.alter_column("upload_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_pages_upload_id_uploads"), "uploads", ["upload_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index(op.f("ix_pages_upload_id"), ["upload_id"], unique=False)
        batch.drop_column("filename")
        batch.drop_column("media_type")


def downgrade() -> None:
    with op.batch_alter_table("pages") as batch:
        batch.add_column(sa.Column("filename", sa.String(length=255), nullable=False, server_default=""))
        batch.add_column(sa.Column("media_type", sa.String(length=64), nullable=False, server_default=""))
    connection = op.get_bind()
    connection.execute(
        sa.text(
            "UPDATE pages SET filename = (SELECT u.filename FROM uploads u WHERE u.id = pages.upload_id), "
            "media_type = (SELECT u.media_type FROM uploads u WHERE u.id = pages.upload_id)"
        )
    )
    # 0001 had one file per page: each page gets its upload's bytes back (PDF pages share them).
    connection.execute(
        sa.text(
            "INSERT INTO page_files (page_id, kind, media_type, sha256, size, data) "
            "SELECT p.id, 'upload', u.media_type, u.sha256, u.size, u.data FROM pages p JOIN uploads u ON u.id = p.upload_id"
        )
    )
    with op.batch_alter_table("pages") as batch:
        batch.drop_index(op.f("ix_pages_upload_id"))
        batch.drop_constraint(op.f("fk_pages_upload_id_uploads"), type_="foreignkey")
        batch.drop_column("upload_id")
        batch.drop_column("source_index")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("layout")
    op.drop_table("line_images")
    op.drop_index(op.f("ix_uploads_job_id"), table_name="uploads")
    op.drop_table("uploads")
