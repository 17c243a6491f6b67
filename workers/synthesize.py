"""``chorus.synthesize``: speak one segment, store it in S3, return metadata.

The S3 key is a pure function of (job, index, model version), so a redelivered
segment writes the same object and returns the same result. Attempts are counted
in Redis: a segment that crashes its worker is redelivered by Redis without
passing through Celery's retry counter, and must not loop forever.
"""

from __future__ import annotations

import gc
import logging
import sys

from configs import get_settings
from tasks import context
from tasks.app import app
from tasks.audio import to_wav_bytes
from tasks.errors import EngineError
from tasks.storage import segment_key
from workers import model as worker_model

log = logging.getLogger(__name__)


@app.task(name="chorus.synthesize", bind=True, max_retries=None)
def synthesize(self, job_id: str, index: int, text: str, voice_id: str) -> dict:
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
        samples = engine.synthesize(text, voice)
        key = segment_key(job_id, index, engine.model.version_tag)
        context.storage().put_bytes(key, to_wav_bytes(samples, engine.sample_rate), "audio/wav")
    except Exception as exc:
        if attempts < settings.segment_attempts:
            log.warning("job %s segment %d attempt %d failed, retrying: %s", job_id, index, attempts, exc)
            raise self.retry(exc=exc, countdown=settings.retry_backoff_s * 2 ** (attempts - 1))
        jobs.fail(job_id, f"segment {index} failed after {attempts} attempts: {type(exc).__name__}: {exc}")
        raise

    jobs.segment_done(job_id, index)
    context.fleet().segment_spoken(self.request.hostname)
    return {
        "index": index,
        "key": key,
        "samples": int(samples.size),
        "sample_rate": engine.sample_rate,
        "worker": self.request.hostname,
    }


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
