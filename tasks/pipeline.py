"""``chorus.split``: cut a job's text into segments and launch its chord.

The chord's header is flat: one ``chorus.synthesize`` per segment, sent by name
to the voice's model queue (this module never imports ``workers``). Its body is
``chorus.assemble`` on ``chorus.jobs``; its error callback marks the job failed.
"""

from __future__ import annotations

import logging

from celery import chord

from tasks import context, text
from tasks.app import JOBS_QUEUE, app
from tasks.assemble import assemble
from tasks.storage import input_key, plan_key

log = logging.getLogger(__name__)

SYNTHESIZE_TASK = "chorus.synthesize"


@app.task(name="chorus.split", queue=JOBS_QUEUE)
def split(job_id: str) -> int:
    jobs, storage = context.jobs(), context.storage()
    job = jobs.get(job_id)
    if job.state.final:
        return 0
    try:
        model = context.registry().models[context.voices().get(job.voice).model]
        source = storage.get_bytes(input_key(job_id)).decode("utf-8")
        segments = text.split(source, model.max_segment_chars)
        if not segments:
            raise ValueError("the text has nothing speakable")
        storage.put_json(
            plan_key(job_id),
            {
                "voice": job.voice,
                "model": model.name,
                "segments": [
                    {"index": s.index, "text": s.text, "paragraph_end": s.paragraph_end} for s in segments
                ],
            },
        )
    except Exception as exc:
        jobs.fail(job_id, f"split failed: {type(exc).__name__}: {exc}")
        raise

    header = [
        app.signature(SYNTHESIZE_TASK, args=(job_id, s.index, s.text, job.voice), queue=model.queue)
        for s in segments
    ]
    body = assemble.s(job_id).set(queue=JOBS_QUEUE)
    body.link_error(job_failed.s(job_id))
    jobs.start(job_id, len(segments))
    chord(header)(body)
    log.info("job %s: %d segments on %s", job_id, len(segments), model.queue)
    return len(segments)


@app.task(name="chorus.job_failed", queue=JOBS_QUEUE)
def job_failed(request: object, exc: BaseException, traceback: object, job_id: str) -> None:
    """Error callback of the chord: a failed segment or assembly fails the job.

    A segment that gave up has usually recorded a more precise reason already;
    the first reason is kept."""
    jobs = context.jobs()
    jobs.fail(job_id, f"{type(exc).__name__}: {exc}")
