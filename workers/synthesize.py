"""``chorus.synthesize``: speak one segment, store it in the cache, return metadata.

The S3 key is a pure function of the segment's content (spoken text, voice,
model version, settings), so a redelivered segment writes the same object.
What every job task shares (the final-state skip, attempts counted at each
start, including starts whose worker process died, retries of transient
errors, the job's failure recorded with the segment's index) is in
``tasks/base.py``.
"""

from __future__ import annotations

import gc
import logging
import sys

import numpy as np

from configs import Voice
from tasks import context
from tasks.app import JOBS_QUEUE, app
from tasks.audio import mastering
from tasks.audio.formats import to_wav_bytes
from tasks.base import JobTask
from tasks.errors import ChorusError, EngineError, VoiceMismatch
from tasks.state.cache import object_key
from workers import model as worker_model
from workers.engines import Engine

log = logging.getLogger(__name__)

ASSEMBLE_CHAPTER_TASK = "chorus.assemble_chapter"


def speak(engine: Engine, spoken: str, voice: Voice) -> np.ndarray:
    """The engine's audio for one segment. An error the engine did not
    classify (an onnxruntime or torch failure: often memory) counts as a
    transient EngineError, retried like one."""
    try:
        return engine.synthesize(spoken, voice)
    except ChorusError:
        raise
    except Exception as exc:
        raise EngineError(f"{engine.model.name} failed: {type(exc).__name__}: {exc}") from exc


# Its result is kept: the chord's header reports to its body through the result backend.
@app.task(name="chorus.synthesize", base=JobTask, bind=True, unit="segment {index}", ignore_result=False)
def synthesize(
    self, job_id: str, index: int, chapter: int, chapter_size: int, spoken: str, voice_id: str, cache_key: str,
    run: int | None = None,
) -> dict:
    engine = worker_model.engine()
    voice = context.voices().get(voice_id)  # UnknownVoice (deleted meanwhile): permanent
    if voice.model != engine.model.name:
        raise VoiceMismatch(f"voice {voice_id!r} belongs to model {voice.model!r}, this worker holds {engine.model.name!r}")
    worker_model.ensure_speaker(engine, voice)
    # Trimmed and faded here, once, so the cache holds segments ready to join.
    samples = mastering.prepare_segment(speak(engine, spoken, voice), engine.sample_rate, mastering.Mastering())
    audio = to_wav_bytes(samples, engine.sample_rate)
    context.storage().put_bytes(object_key(cache_key), audio, "audio/wav")
    context.cache().add(cache_key, len(audio))

    for complete in context.jobs().segments_done(job_id, [(index, chapter)], {chapter: chapter_size}):
        app.send_task(ASSEMBLE_CHAPTER_TASK, args=(job_id, complete), queue=JOBS_QUEUE, ignore_result=True)
    context.fleet().segment_spoken(self.request.hostname)
    return {"index": index, "samples": int(samples.size), "sample_rate": engine.sample_rate, "worker": self.request.hostname}


@app.task(name="chorus.release_memory", bind=True, ignore_result=True)
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


@app.task(name="chorus.forget_speaker", bind=True, ignore_result=True)
def forget_speaker(self, voice_id: str) -> None:
    """A registered voice was deleted: drop its speaker from this process."""
    engine = worker_model.engine()
    if engine.has_speaker(voice_id):
        engine.forget_speaker(voice_id)
        context.fleet().speaker_forgotten(self.request.hostname)
