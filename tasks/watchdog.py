"""``chorus.watchdog``: no job stays running forever.

A chord whose header task vanished (raised ``Ignore``, or was lost with a
worker beyond redelivery) never calls its body. Every job gets a deadline when
it is split; the watchdog, run periodically by the jobs worker's embedded
beat, re-drives a job past its deadline once (cached segments stay done, so
only what is missing runs again) and fails it the second time.
"""

from __future__ import annotations

import logging
import time

from tasks import context
from tasks.app import JOBS_QUEUE, SPLIT_TASK, app

log = logging.getLogger(__name__)

MAX_REDRIVES = 1


def redrive(job_id: str) -> None:
    """Queue the job for another split (used by the API's resume too). Sent by
    name: the API, which calls this, never imports the pipeline."""
    context.jobs().resume(job_id)
    app.send_task(SPLIT_TASK, args=(job_id,), queue=JOBS_QUEUE, ignore_result=True)


@app.task(name="chorus.watchdog", queue=JOBS_QUEUE)
def watchdog() -> dict[str, int]:
    jobs, now = context.jobs(), time.time()
    redriven = failed = 0
    for job_id in jobs.active_ids():
        try:
            job = jobs.get(job_id)
        except Exception:  # expired or removed: nothing to watch
            jobs.redis.srem(jobs.ACTIVE, job_id)
            continue
        if job.state.final or not job.deadline_at or now < job.deadline_at:
            continue
        if job.redrives < MAX_REDRIVES:
            log.warning("job %s passed its deadline; re-driving it", job_id)
            redrive(job_id)
            redriven += 1
        else:
            jobs.fail(job_id, "the job did not finish within its deadline, even after being re-driven")
            failed += 1
    return {"redriven": redriven, "failed": failed}
