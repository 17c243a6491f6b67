"""Cancelling jobs: the one path for every way a job is called off (its owner
deletes it, its API key is revoked).

A job moves to ``cancelled`` only from an unfinished state (the job store's
guarded writer refuses a finished one). Its segments still queued are revoked
by the chord's stamp, in one broadcast for all the jobs; running ones stop at
their next check of the job's state (revocations live in worker memory only);
its objects are deleted, and a render in flight takes back its own upload. The
workers go on serving other jobs."""

from __future__ import annotations

from collections.abc import Iterable

from chorus.tasks import clients
from chorus.tasks.app import JOB_STAMP, app
from chorus.tasks.state.storage import job_prefix


def cancel_jobs(job_ids: Iterable[str]) -> list[str]:
    """Cancel each unfinished job of ``job_ids``; the ones that were unfinished."""
    jobs, storage = clients.jobs(), clients.storage()
    cancelled = [job_id for job_id in job_ids if jobs.cancel(job_id)]
    if cancelled:
        app.control.revoke_by_stamped_headers({JOB_STAMP: cancelled})
        for job_id in cancelled:
            storage.delete_prefix(job_prefix(job_id))
    return cancelled


def cancel_job(job_id: str) -> bool:
    """Cancel the job; False when it had already finished (or is gone)."""
    return bool(cancel_jobs([job_id]))


def cancel_jobs_of(owner: str) -> list[str]:
    """Cancel every unfinished job (queued or running) of the API key ``owner``."""
    return cancel_jobs(clients.jobs().active_ids_of(owner))
