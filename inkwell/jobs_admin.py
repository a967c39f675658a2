"""Deleting a job with all its data on request (forms hold personal data), recorded in the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from inkwell.models import AuditEntry, Job, Line, Page, Upload


def delete_job(session: Session, job: Job, actor: str) -> dict[str, Any]:
    """Delete ``job`` (the database cascades to its files, pages, images, lines and history) and
    record who did it, with what was deleted; returns that summary."""
    files = list(session.scalars(select(Upload.filename).where(Upload.job_id == job.id).order_by(Upload.number)))
    lines = session.scalar(select(func.count(Line.id)).join(Page, Line.page_id == Page.id).where(Page.job_id == job.id)) or 0
    summary = {"id": job.id, "deleted": True, "files": files, "pages": job.page_count, "lines": lines}
    session.add(AuditEntry(actor=actor, action="job.deleted", job_id=job.id,
                           details={"files": files, "pages": job.page_count, "lines": lines, "status": job.status.value,
                                    "created_at": job.created_at.isoformat()}))
    job_id = job.id
    session.expunge(job)
    session.execute(delete(Job).where(Job.id == job_id))
    return summary
