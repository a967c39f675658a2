"""Tables: a Job holds Pages (with their stored files), a Page holds Lines in reading order."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inkwell.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    # Random, not sequential: a job id in a URL must not let anyone guess other jobs' ids.
    return uuid.uuid4().hex


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIAL = "partial"  # finished; some pages failed, others succeeded

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.PARTIAL)


class PageStatus(str, enum.Enum):
    QUEUED = "queued"  # stored, waiting for the "pages" queue
    PREPARED = "prepared"  # decoded and cut into lines, waiting for the "lines" queue
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (PageStatus.SUCCEEDED, PageStatus.FAILED)


def _enum(kind: type[enum.Enum]) -> Enum:
    # Stored as short strings with a CHECK constraint: portable, and new values need no ALTER TYPE.
    return Enum(
        kind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e], validate_strings=True
    )


def _timestamp(nullable: bool = True) -> Any:
    return mapped_column(DateTime(timezone=True), nullable=nullable)


class Job(Base):
    """One submission: one or more uploaded files, read as a unit and reported on together."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_job_id)
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus), default=JobStatus.QUEUED, index=True)
    source: Mapped[str] = mapped_column(String(16), default="api")
    model: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int] = mapped_column(Integer, default=0)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    pages_failed: Mapped[int] = mapped_column(Integer, default=0)
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    lines_done: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = _timestamp()
    finished_at: Mapped[datetime | None] = _timestamp()

    layout: Mapped[str] = mapped_column(String(8), default="page")  # "page": find lines; "line": each file is one line
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )  # submitted in the browser
    token_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="SET NULL"), index=True
    )  # submitted over the API
    reviewed_at: Mapped[datetime | None] = _timestamp()  # every page reviewed
    # "<caller>:<Idempotency-Key>": a retried submission finds its job instead of making a second one
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))  # what was sent with that key
    callback_url: Mapped[str | None] = mapped_column(Text)
    callback_state: Mapped[str | None] = mapped_column(String(16))  # pending, delivered, failed
    callback_attempts: Mapped[int] = mapped_column(Integer, default=0)
    callback_error: Mapped[str | None] = mapped_column(Text)

    uploads: Mapped[list[Upload]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="Upload.number", passive_deletes=True
    )
    pages: Mapped[list[Page]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="Page.number", passive_deletes=True
    )


class Upload(Base):
    """One uploaded file as received (an image, a multi-page TIFF or a PDF) and its bytes.

    The bytes live in the database: every web process and worker, on any machine, reads them
    through the connection it already has, and they are committed in the same transaction as
    the job, so an accepted job always has its files (see README, "Where page bytes live").
    """

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1-based position in the request
    filename: Mapped[str] = mapped_column(String(255))  # as uploaded; for display only, never a path
    media_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    page_count: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded only when asked for

    job: Mapped[Job] = relationship(back_populates="uploads")


class Page(Base):
    """One page of a job: an uploaded image, or one page of an uploaded PDF or TIFF."""

    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("uploads.id", ondelete="CASCADE"), index=True)
    source_index: Mapped[int] = mapped_column(Integer, default=0)  # 0-based page within the upload
    number: Mapped[int] = mapped_column(Integer)  # 1-based position in the job
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[PageStatus] = mapped_column(_enum(PageStatus), default=PageStatus.QUEUED, index=True)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # deliveries that started work on it (crash detection)
    queued_at: Mapped[datetime | None] = _timestamp()  # when its current message was last sent
    line_count: Mapped[int] = mapped_column(Integer, default=0)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # mean of line embeddings, packed array
    embedding_model: Mapped[str | None] = mapped_column(String(255))  # the model and encoder layer it comes from;
    embedding_layer: Mapped[int | None] = mapped_column(Integer)  # layer None: the encoder's final output
    timings: Mapped[dict[str, float] | None] = mapped_column(JSON)  # seconds per stage (worker/pipeline.py)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = _timestamp()
    reviewed_at: Mapped[datetime | None] = _timestamp()
    reviewed_by: Mapped[str | None] = mapped_column(String(100))

    job: Mapped[Job] = relationship(back_populates="pages")
    upload: Mapped[Upload] = relationship()
    lines: Mapped[list[Line]] = relationship(
        back_populates="page", cascade="all, delete-orphan", order_by="Line.number", passive_deletes=True
    )


class PageFile(Base):
    """Images derived from a page: ``kind='image'`` is the page as rasterised and turned upright
    (JPEG, for display); kept apart from ``pages`` so that listing pages never loads bytes."""

    __tablename__ = "page_files"
    __table_args__ = (UniqueConstraint("page_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Line(Base):
    """One text line of a page: where it is, what the model read, and what a reviewer corrected."""

    __tablename__ = "lines"
    __table_args__ = (UniqueConstraint("page_id", "number"),)  # re-running a page can never duplicate lines

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # 1-based reading order
    bbox: Mapped[list[int]] = mapped_column(JSON)  # [x0, y0, x1, y1] in page pixels
    polygon: Mapped[list[list[int]] | None] = mapped_column(JSON)
    detection_confidence: Mapped[float | None] = mapped_column(Float)
    text_type: Mapped[str | None] = mapped_column(String(16))  # "printed" or "handwritten" (None: not classified)
    text_type_confidence: Mapped[float | None] = mapped_column(Float)
    text: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # [{"text", "confidence"}]
    attention: Mapped[bytes | None] = mapped_column(LargeBinary)  # packed tokens x grid_h x grid_w array
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # packed 1-D array
    embedding_layer: Mapped[int | None] = mapped_column(Integer)  # encoder layer; None: its final output
    model: Mapped[str | None] = mapped_column(String(255))
    recognized_at: Mapped[datetime | None] = _timestamp()
    corrected_text: Mapped[str | None] = mapped_column(Text)
    corrected_by: Mapped[str | None] = mapped_column(String(255))
    corrected_at: Mapped[datetime | None] = _timestamp()
    reviewed_at: Mapped[datetime | None] = _timestamp()  # accepted or corrected by a person
    reviewed_by: Mapped[str | None] = mapped_column(String(100))

    page: Mapped[Page] = relationship(back_populates="lines")

    @property
    def final_text(self) -> str:
        """The reviewer's text where there is one, else the model's."""
        return self.corrected_text if self.corrected_text is not None else (self.text or "")


class LineImage(Base):
    """The line cut out of the page at full resolution and straightened (PNG): the model's input."""

    __tablename__ = "line_images"

    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class LineEdit(Base):
    """One correction of a line: what it became, what it was, who and when (the history)."""

    __tablename__ = "line_edits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_id: Mapped[int] = mapped_column(ForeignKey("lines.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    previous: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A reviewer who signs in to the web pages (managed with ``inkwell user ...``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = _timestamp()
    # Copied into the session at sign-in and checked on every request; sign-out increments it,
    # which ends every session of this user on the server.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class SignInFailure(Base):
    """A failed sign-in, kept for the throttling window (see inkwell.throttle)."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)  # as typed, normalised; may not exist
    address: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class ApiToken(Base):
    """A credential for the HTTP API (managed with ``inkwell token ...``); only its hash is kept."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in listings, never enough to use
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    all_jobs: Mapped[bool] = mapped_column(Boolean, default=False)  # else it sees only the jobs it submitted
    webhook_secret: Mapped[str] = mapped_column(String(64))  # signs this token's job callbacks
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = _timestamp()
    revoked_at: Mapped[datetime | None] = _timestamp()


class WorkerHeartbeat(Base):
    """The last sign of life of each worker process (for /readyz)."""

    __tablename__ = "worker_heartbeats"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    queues: Mapped[str] = mapped_column(String(64))
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
