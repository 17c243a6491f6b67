"""``chorus.split``: launch a job's chord from its stored plan.

The API made the plan (chapters, segments, spoken forms, cache keys; see
``tasks/text/plan.py``) and stored it in S3. Segments already in the cache count as done
at once; the chord's header holds one ``chorus.synthesize`` per missing
segment, sent by name to the voice's model queue (this module never imports
``workers``). The body is ``chorus.assemble`` on ``chorus.jobs``; its error
callback marks the job failed. Chapters whose segments are all cached are
assembled right away.
"""

from __future__ import annotations

import logging
import time

from celery import chord

from configs import get_settings
from tasks import context
from tasks.app import JOBS_QUEUE, SPLIT_TASK, app
from tasks.assemble import assemble, assemble_chapter
from tasks.state.storage import plan_key
from tasks.text.plan import Plan

log = logging.getLogger(__name__)

SYNTHESIZE_TASK = "chorus.synthesize"
PRIORITY_BAND = 20  # segments per priority level; beyond 9 levels all share the lowest


@app.task(name=SPLIT_TASK, queue=JOBS_QUEUE)
def split(job_id: str) -> int:
    """Launch the job's chord from the plan the API stored; the book is never read again."""
    jobs, storage, cache = context.jobs(), context.storage(), context.cache()
    job = jobs.get(job_id)
    if job.state.final:
        return 0
    try:
        plan = Plan.from_dict(storage.get_json(plan_key(job_id)))
        model = context.registry().models[plan.model]
        cached = cache.hits(s.cache_key for s in plan.segments)
    except Exception as exc:
        jobs.fail(job_id, f"split failed: {type(exc).__name__}: {exc}")
        raise

    hits = [s for s in plan.segments if s.cache_key in cached]
    misses = [s for s in plan.segments if s.cache_key not in cached]
    sizes = {c.index: c.count for c in plan.chapters}
    settings = get_settings()
    deadline = time.time() + settings.job_deadline_base_s + settings.job_deadline_per_segment_s * len(misses)
    jobs.start(job_id, cache_hits=len(hits), deadline_at=deadline)
    done_by_chapter: dict[int, list[int]] = {}
    for segment in hits:
        done_by_chapter.setdefault(segment.chapter, []).append(segment.index)
    for chapter in jobs.segments_done(job_id, done_by_chapter, sizes):
        assemble_chapter.delay(job_id, chapter)

    body = assemble.s(job_id).set(queue=JOBS_QUEUE)
    body.link_error(job_failed.s(job_id))
    if not misses:  # everything cached: nothing to synthesise
        body.apply_async(([],))
    else:
        header = [
            app.signature(
                SYNTHESIZE_TASK,
                kwargs={
                    "job_id": job_id, "index": s.index, "chapter": s.chapter, "chapter_size": sizes[s.chapter],
                    "spoken": s.spoken, "voice_id": plan.voice, "cache_key": s.cache_key,
                },
                queue=model.queue,
                # Interleaving: a job's first segments go ahead of any job's later
                # ones, so a short book never waits for a long one to finish.
                priority=min(9, position // PRIORITY_BAND),
            )
            for position, s in enumerate(misses)
        ]
        canvas = chord(header, body)
        canvas.stamp(chorus_job=job_id)  # DELETE /v1/jobs/{id} revokes by this stamp
        canvas.apply_async()
    log.info("job %s: %d segments (%d cached) in %d chapters on %s",
             job_id, len(plan.segments), len(hits), len(plan.chapters), model.queue)
    return len(plan.segments)


@app.task(name="chorus.job_failed", queue=JOBS_QUEUE)
def job_failed(request: object, exc: BaseException, traceback: object, job_id: str) -> None:
    """Error callback of the chord: a failed segment or assembly fails the job.

    A segment that gave up has usually recorded a more precise reason already;
    the first reason is kept."""
    context.jobs().fail(job_id, f"{type(exc).__name__}: {exc}")
