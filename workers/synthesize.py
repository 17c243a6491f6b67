"""``chorus.synthesize``: speak one segment, store it in the cache, return metadata.

The S3 key is a pure function of the segment's content (spoken text, voice,
model version, settings), so a redelivered segment writes the same object. Attempts are counted
in Redis: a segment that crashes its worker is redelivered by Redis without
passing through Celery's retry counter, and must not loop forever.
"""

from __future__ import annotations

import gc
import logging
import sys

from configs import get_settings
from tasks import context
from tasks.app import JOBS_QUEUE, app
from tasks.audio import mastering
from tasks.audio.formats import to_wav_bytes
from tasks.errors import EngineError
from tasks.state.cache import object_key
from workers import model as worker_model

log = logging.getLogger(__name__)

ASSEMBLE_CHAPTER_TASK = "chorus.assemble_chapter"


@app.task(name="chorus.synthesize", bind=True, max_retries=None)
def synthesize(
    self, job_id: str, index: int, chapter: int, chapter_size: int, spoken: str, voice_id: str, cache_key: str
) -> dict:
    jobs, settings = context.jobs(), get_settings()
    job = jobs.get(job_id)
    if job.state.final:  # failed or cancelled meanwhile: do no more work for it
        return {"index": index, "skipped": True}

    attempts = jobs.count_attempt(job_id, index)
    try:
        engine = worker_model.engine()
        voice = context.voices().get(voice_id)
        if voice.model != engine.model.name:
            raise EngineError(f"voice {voice_id!r} belongs to model {voice.model!r}, this worker holds {engine.model.name!r}")
        worker_model.ensure_speaker(engine, voice)
        # Trimmed and faded here, once, so the cache holds segments ready to join.
        samples = mastering.prepare_segment(engine.synthesize(spoken, voice), engine.sample_rate, mastering.Mastering())
        audio = to_wav_bytes(samples, engine.sample_rate)
        context.storage().put_bytes(object_key(cache_key), audio, "audio/wav")
        context.cache().add(cache_key, len(audio))
    except Exception as exc:
        if attempts < settings.segment_attempts:
            log.warning("job %s segment %d attempt %d failed, retrying: %s", job_id, index, attempts, exc)
            raise self.retry(exc=exc, countdown=settings.retry_backoff_s * 2 ** (attempts - 1))
        jobs.fail(job_id, f"segment {index} failed after {attempts} attempts: {type(exc).__name__}: {exc}")
        raise

    for complete in jobs.segments_done(job_id, {chapter: [index]}, {chapter: chapter_size}):
        app.send_task(ASSEMBLE_CHAPTER_TASK, args=(job_id, complete), queue=JOBS_QUEUE)
    context.fleet().segment_spoken(self.request.hostname)
    return {"index": index, "samples": int(samples.size), "sample_rate": engine.sample_rate, "worker": self.request.hostname}


@app.task(name="chorus.release_memory", bind=True)
def release_memory(self, job_id: str) -> None:
    """Runs once per job on each worker that served it, in the process that
    holds the model (it arrives on the worker's direct queue)."""
    worker_model.engine().release_memory()
    gc.collect()
    torch = sys.modules.get("torch")  # only if the engine imported it
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    context.jobs().record_release(job_id, self.request.hostname)
    context.fleet().memory_released(self.request.hostname)


@app.task(name="chorus.forget_speaker", bind=True)
def forget_speaker(self, voice_id: str) -> None:
    """A registered voice was deleted: drop its speaker from this process."""
    engine = worker_model.engine()
    if engine.has_speaker(voice_id):
        engine.forget_speaker(voice_id)
        context.fleet().speaker_forgotten(self.request.hostname)
