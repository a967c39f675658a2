"""The states a job, a page and a job's callback go through: the one spelling of each, from which
the database columns, the API schemas and the OpenAPI document are derived."""

from __future__ import annotations

import enum


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


class CallbackState(str, enum.Enum):
    """Where a job's callback stands (``jobs.callback_state``; no callback: NULL)."""

    PENDING = "pending"  # owed: sent once the job finishes, retried with backoff
    DELIVERED = "delivered"
    FAILED = "failed"  # given up (attempts spent, or nothing to sign it with)
