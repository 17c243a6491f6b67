"""``chorus.split``: launch a job's chord from its stored plan.

The API made the plan (chapters, segments, spoken forms, cache keys; see
``tasks/text/plan.py``) and stored it in S3. Segments already in the cache count as done
at once; the chord's header holds one ``chorus.synthesize`` per missing
segment, sent by name to the voice's model queue (this module never imports
``workers``). The body is ``chorus.assemble`` on ``chorus.jobs``; its error
callback marks the job failed. Chapters whose segments are all cached are
assembled right away.

The split moves the job from queued to running once (``EDGES["start"]``): a
split delivered twice, or redelivered after its worker died, finds the job
running and launches nothing. A split that died after that step leaves a
running job without a chord; the watchdog finds it at its deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery import chord

from chorus.configs import get_settings
from chorus.tasks import clients
from chorus.tasks.app import JOB_STAMP, app
from chorus.tasks.assemble import assemble, assemble_chapter
from chorus.tasks.base import JobTask
from chorus.tasks.names import JOB_FAILED_TASK, JOBS_QUEUE, SPLIT_TASK, SYNTHESIZE_TASK
from chorus.tasks.state.storage import plan_key
from chorus.tasks.text.plan import NORMAL_SPEED, Plan

log = logging.getLogger(__name__)

PRIORITY_BAND = 20  # a job's first segments, at the first priority level
LOWEST_PRIORITY = 9


def priority_of(position: int) -> int:
    """A segment's priority level from its position among its job's segments
    to synthesise: 20 at level 0, the next 40 at 1, 80 at 2, and so on, each
    level twice as wide as the one before, up to 9 (from position 10,220).
    Levels that double keep a short job's tail out of the lowest level, where
    it would wait behind every long book's remaining thousands: a job's
    level-k segments wait only behind the first 20 x (2^(k+1) - 1) segments
    of any other job."""
    return min(LOWEST_PRIORITY, (position // PRIORITY_BAND + 1).bit_length() - 1)


@app.task(name=SPLIT_TASK, base=JobTask, unit="split", queue=JOBS_QUEUE)
def split(job_id: str) -> None:
    """Launch the job's chord from the plan the API stored; the book is never read again."""
    jobs, storage, cache, settings = clients.jobs(), clients.storage(), clients.cache(), get_settings()
    plan = Plan.from_dict(storage.get_json(plan_key(job_id)))
    registry = clients.registry()
    model = registry.models[plan.model]
    cached = cache.hits(s.cache_key for s in plan.segments)
    hits = [s for s in plan.segments if s.cache_key in cached]
    misses = [s for s in plan.segments if s.cache_key not in cached]
    sizes = {c.index: c.count for c in plan.chapters}

    # Its own segments, plus the work already queued on its model's queue,
    # shared among the workers serving that queue right now.
    backlog = clients.backlog()
    ahead = backlog.queued(model.queue) / max(1, backlog.workers(model.queue))
    deadline = time.time() + settings.job_deadline_base_s + settings.job_deadline_per_segment_s * (len(misses) + ahead)
    if not jobs.start(job_id, cache_hits=len(hits), deadline_at=deadline):
        log.info("job %s: already started (or no longer queued); this split launches nothing", job_id)
        return

    # This run of the job: its chord's tasks carry it, so that whatever an
    # earlier run left behind (a late error callback, a segment still retrying)
    # can neither fail nor finish the job after a re-drive.
    run = jobs.redrives(job_id)
    for chapter in jobs.segments_done(job_id, [(s.index, s.chapter) for s in hits], sizes):
        assemble_chapter.delay(job_id, chapter)
    body = assemble.s(job_id, run=run).set(queue=JOBS_QUEUE)
    body.link_error(job_failed.s(job_id, run))
    if not misses:  # everything cached: nothing to synthesise
        body.apply_async(([],))
    else:
        # Speed travels only when it is not the normal one: a worker from before
        # speed existed still takes the segments of a normal-speed job.
        at_speed = {"speed": plan.speed} if plan.speed != NORMAL_SPEED else {}
        header = [
            app.signature(
                SYNTHESIZE_TASK,
                kwargs={
                    "job_id": job_id, "index": s.index, "chapter": s.chapter, "chapter_size": sizes[s.chapter],
                    "spoken": s.spoken, "voice_id": plan.voice_of(s), "cache_key": s.cache_key, "run": run,
                    **at_speed,
                },
                queue=registry.models[plan.model_of(s)].queue,  # a book may mix models: each voice's own
                ignore_result=True,  # the chord's list carries its result to the body
                # Interleaving: a job's first segments go ahead of any job's later
                # ones, so a short book never waits for a long one to finish.
                priority=priority_of(position),
            )
            for position, s in enumerate(misses)
        ]
        canvas = chord(header, body)
        canvas.stamp(**{JOB_STAMP: job_id})
        with _unwatched_results():
            launched = canvas.apply_async()
        jobs.record_chord(job_id, launched.parent.id)
        # A cancel that landed while the chord was being sent revoked nothing
        # of it yet: revoke again, so workers drop its segments unread.
        state = jobs.state(job_id)
        if state is None or state.final:
            app.control.revoke_by_stamped_headers({JOB_STAMP: job_id})
    log.info("job %s: %d segments (%d cached) in %d chapters on %s",
             job_id, len(plan.segments), len(hits), len(plan.chapters), model.queue)


@contextmanager
def _unwatched_results() -> Iterator[None]:
    """While a chord is sent, its header parts become no pending results of
    this process.

    Launching a chord on the Redis backend makes the header a GroupResult
    whose ready-barrier registers every part as a pending result, and each
    registration subscribes to the part's result channel: a SUBSCRIBE per
    segment, and an UNSUBSCRIBE to undo it, since nobody here ever waits on
    them (celery/celery#4824). The chord's body gets the results through the
    backend all the same. The jobs worker's pool processes run one task at a
    time, so nothing else in the process registers a result meanwhile."""
    backend = app.backend
    backend.add_pending_result = _registered_nowhere
    try:
        yield
    finally:
        del backend.add_pending_result


def _registered_nowhere(result: Any, weak: bool = False, start_drainer: bool = True) -> Any:
    return result


@app.task(name=JOB_FAILED_TASK, base=JobTask, queue=JOBS_QUEUE)
def job_failed(request: object, exc: BaseException, traceback: object, job_id: str, run: int | None = None) -> None:
    """Error callback of the chord: a failed segment or assembly fails the job
    (the run whose chord it was: a job re-driven since is left alone).

    The task that failed has usually recorded a more precise reason already;
    the first reason is kept."""
    clients.jobs().fail(job_id, f"{type(exc).__name__}: {exc}", run=run)
