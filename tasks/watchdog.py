"""``chorus.watchdog``: no job stays unfinished forever, no job's leftovers
stay for ever either. Sent periodically by the beat to the control lane
(queue ``chorus.control``, worker-control: one task at a time).

Deadlines. Every job has one from the moment it is queued: its split must
start within ``job_deadline_base_s``; once split, it must finish within the
base, plus an allowance per segment for its own segments and for those queued
ahead of it (see ``tasks/pipeline.py``). A job past its deadline that is still
waiting behind work on its queue (and a live worker is taking that work) gets
a later deadline, not a second chord. Otherwise its chord, or its split, was
lost (a header part raised ``Ignore``, a message vanished with a worker): the
watchdog re-drives it once (cached segments stay done, so only what is missing
runs again) and fails it the second time.

Leftovers. A job whose record expired (``job_ttl_s``) or vanished loses its
objects in S3 and frees its owner's concurrency slot; multipart uploads that
a dead process left open for ``abandoned_upload_s`` are aborted.

Each run records what it did in Redis (``chorus:watchdog:last``, JSON), for
operators and tests.
"""

from __future__ import annotations

import json
import logging
import time

from chorus.configs import get_settings
from chorus.tasks import clients
from chorus.tasks.app import app
from chorus.tasks.errors import ChorusError
from chorus.tasks.names import CONTROL_QUEUE, JOBS_QUEUE, SPLIT_TASK, WATCHDOG_TASK
from chorus.tasks.state.jobs import Job, JobState
from chorus.tasks.state.storage import JOBS_PREFIX, job_prefix

log = logging.getLogger(__name__)

MAX_REDRIVES = 1
LAST_RUN = "chorus:watchdog:last"


def redrive(job_id: str) -> bool:
    """Queue a failed or overdue job for another split (the API's resume uses
    this too); False when its state does not allow it. Sent by name: the API,
    which calls this, never imports the pipeline."""
    if not clients.jobs().resume(job_id):
        return False
    app.send_task(SPLIT_TASK, args=(job_id,), queue=JOBS_QUEUE, ignore_result=True)
    return True


def remove_job(job_id: str) -> None:
    """Delete a finished job's objects, then its record (DELETE /v1/jobs/{id})."""
    clients.storage().delete_prefix(job_prefix(job_id))
    clients.jobs().remove(job_id)


def _queue_of(job: Job) -> str:
    """The queue whose work stands between the job and its next step."""
    if job.state != JobState.RUNNING:
        return JOBS_QUEUE  # its split, or its assembly
    try:
        return clients.registry().models[clients.voices().get(job.voice).model].queue
    except (ChorusError, KeyError):  # its voice is gone: nothing it waits for will come
        return ""


def _check_deadline(job: Job, now: float) -> str:
    """What the watchdog does with one unfinished job: '', postponed, redriven or failed."""
    if now < job.deadline_at:
        return ""
    settings, queue = get_settings(), _queue_of(job)
    wait = clients.backlog().wait_s(queue, settings.job_deadline_per_segment_s) if queue else 0.0
    if wait > 0:
        clients.jobs().postpone(job.id, now + settings.job_deadline_base_s + wait)
        log.info("job %s is past its deadline but waits behind work on %s; %.0f s more", job.id, queue, wait)
        return "postponed"
    if job.redrives < MAX_REDRIVES:
        log.warning("job %s (%s) passed its deadline; re-driving it", job.id, job.state)
        return "redriven" if redrive(job.id) else ""
    what = "its split never started" if job.state == JobState.QUEUED else "it did not finish within its deadline"
    failed = clients.jobs().fail(job.id, f"{what}, even after being re-driven")
    return "failed" if failed else ""


def _sweep(now: float) -> int:
    """Forget jobs whose record expired: their objects, their side keys, their owner's slot."""
    jobs, storage, swept = clients.jobs(), clients.storage(), 0
    gone = [job_id for job_id in jobs.active_ids() if jobs.state(job_id) is None]
    for job_id in dict.fromkeys([*jobs.expired_ids(now), *gone]):
        storage.delete_prefix(job_prefix(job_id))
        if jobs.forget_expired(job_id, now):
            swept += 1
    return swept


@app.task(name=WATCHDOG_TASK, queue=CONTROL_QUEUE, ignore_result=True)
def watchdog() -> dict[str, object]:
    jobs, settings, now = clients.jobs(), get_settings(), time.time()
    report: dict[str, object] = {"task": watchdog.request.id, "at": now, "postponed": 0, "redriven": 0, "failed": 0}
    for job_id in jobs.active_ids():
        try:
            job = jobs.get(job_id)
        except ChorusError:  # its record is gone: the sweep below forgets it
            continue
        outcome = _check_deadline(job, now)
        if outcome:
            report[outcome] = int(report[outcome]) + 1  # type: ignore[call-overload]
    try:  # S3 may be down; deadlines are checked all the same
        report["swept"] = _sweep(now)
        report["uploads_aborted"] = clients.storage().abort_uploads(JOBS_PREFIX, settings.abandoned_upload_s)
    except ChorusError as exc:
        log.warning("watchdog: leftovers not cleared this time: %s", exc)
        report["error"] = str(exc)
    clients.redis_client().set(LAST_RUN, json.dumps(report), ex=24 * 3600)
    return report
