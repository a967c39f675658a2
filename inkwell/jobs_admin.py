"""What a clerk needs about jobs beyond their status (file names, who submitted them), and deleting
a job with all its data on request (forms hold personal data), recorded in the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from inkwell.models import ApiToken, AuditEntry, Job, Line, Page, Upload, User


def files_and_submitters(session: Session, job_ids: list[str]) -> dict[str, tuple[list[str], str | None]]:
    """For each job: its files' names (in the order sent) and who submitted it (a user, or ``token:<name>``)."""
    if not job_ids:
        return {}
    files: dict[str, list[str]] = {job_id: [] for job_id in job_ids}
    for job_id, name in session.execute(
        select(Upload.job_id, Upload.filename).where(Upload.job_id.in_(job_ids)).order_by(Upload.job_id, Upload.number)
    ):
        files[job_id].append(name)
    rows = session.execute(
        select(Job.id, User.username, ApiToken.name)
        .outerjoin(User, Job.user_id == User.id)
        .outerjoin(ApiToken, Job.token_id == ApiToken.id)
        .where(Job.id.in_(job_ids))
    )
    who = {job_id: user or (f"token:{token}" if token else None) for job_id, user, token in rows}
    return {job_id: (files[job_id], who.get(job_id)) for job_id in job_ids}


def delete_job(session: Session, job: Job, actor: str) -> dict[str, Any]:
    """Delete ``job`` (the database cascades to its files, pages, images, lines and history) and
    record who did it, with what was deleted; returns that summary."""
    files = list(session.scalars(select(Upload.filename).where(Upload.job_id == job.id).order_by(Upload.number)))
    lines = (
        session.scalar(select(func.count(Line.id)).join(Page, Line.page_id == Page.id).where(Page.job_id == job.id))
        or 0
    )
    summary = {"id": job.id, "deleted": True, "files": files, "pages": job.page_count, "lines": lines}
    session.add(
        AuditEntry(
            actor=actor,
            action="job.deleted",
            job_id=job.id,
            details={
                "files": files,
                "pages": job.page_count,
                "lines": lines,
                "status": job.status.value,
                "created_at": job.created_at.isoformat(),
            },
        )
    )
    job_id = job.id
    session.expunge(job)
    session.execute(delete(Job).where(Job.id == job_id))
    return summary
