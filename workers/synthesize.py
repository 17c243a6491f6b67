"""``chorus.synthesize``: speak one segment, store it in the cache, return metadata.

Each take is judged against its text before it is trimmed
(``tasks/audio/takes.py``: duration per character, not mostly silence, not
clipped); a bad take is spoken again, with another seed, up to
``take_retries`` times in the same run of the task (not an attempt: nothing
failed), and the take closest to the bounds is kept. A suspect segment never
fails its book: its record (takes, and why it still looks wrong) travels in
the cached WAV to the manifest.

The S3 key is a pure function of the segment's content (spoken text, voice,
model version, settings, speed), so a redelivered segment writes to the same key:
its kept take, judged afresh, retaken with the same seeds.
What every job task shares (the final-state skip, attempts counted at each
start, including starts whose worker process died, retries of transient
errors, the job's failure recorded with the segment's index) is in
``tasks/base.py``.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import sys
import time

import numpy as np

from chorus.configs import Voice, get_settings
from chorus.tasks import clients
from chorus.tasks.app import app
from chorus.tasks.audio import loudness, mastering, takes, timings
from chorus.tasks.audio.formats import to_wav_bytes
from chorus.tasks.base import JobTask
from chorus.tasks.errors import ChorusError, EngineError, JobSettled, VoiceMismatch
from chorus.tasks.names import ASSEMBLE_CHAPTER_TASK, FORGET_SPEAKER_TASK, JOBS_QUEUE, RELEASE_MEMORY_TASK, SYNTHESIZE_TASK
from chorus.tasks.state.cache import object_key
from chorus.tasks.state.completion import SpokenSegment
from chorus.workers import model as worker_model
from chorus.workers.engines import Engine

log = logging.getLogger(__name__)


def speak(
    engine: Engine, spoken: str, voice: Voice, seed: int | None = None, speed: float = 1.0,
) -> tuple[np.ndarray, list[tuple[int, int]] | None]:
    """The engine's audio for one segment, and where each spoken word lies in
    it (samples; None from an engine that does not align, or for a take whose
    words it could not tell apart). An error the engine did not classify (an
    onnxruntime or torch failure: often memory) counts as a transient
    EngineError, retried like one."""
    try:
        if getattr(engine, "aligns_words", False):
            return engine.synthesize_words(spoken, voice, seed=seed, speed=speed)
        return engine.synthesize(spoken, voice, seed=seed, speed=speed), None
    except ChorusError:
        raise
    except Exception as exc:
        raise EngineError(f"{engine.model.name} failed: {type(exc).__name__}: {exc}") from exc


def take_seed(cache_key: str, take: int) -> int:
    """The seed of a segment's take after its first (which the engine draws
    as usual): from the segment's content, so a redelivered segment tries the
    same seeds; 31 bits, which every generator takes."""
    return int.from_bytes(hashlib.sha256(f"{cache_key}/{take}".encode()).digest()[:4], "big") >> 1


def speak_well(
    engine: Engine, spoken: str, voice: Voice, cache_key: str, retries: int, job_id: str, index: int,
    speed: float = 1.0,
) -> tuple[np.ndarray, dict, list[tuple[int, int]] | None]:
    """The segment's audio, spoken again while a take looks wrong (at most
    ``retries`` more times), its take record for the manifest, and the kept
    take's word spans (``speak``). Only the best take so far is held. An engine error on any take is raised as
    usual (the task's attempts handle it); a job that ended meanwhile stops
    the retakes (``JobSettled``)."""
    kept: np.ndarray | None = None
    kept_spans: list[tuple[int, int]] | None = None
    kept_verdict: takes.Verdict | None = None
    take = 0
    for take in range(1, retries + 2):
        if take > 1:
            state = clients.jobs().state(job_id)
            if state is None or state.final:
                raise JobSettled(f"job {job_id} is {state or 'gone'}")
        seed = None if take == 1 else take_seed(cache_key, take)
        samples, spans = speak(engine, spoken, voice, seed, speed)
        verdict = takes.judge(samples, engine.sample_rate, spoken, speed=speed)
        if kept_verdict is None or verdict.distance < kept_verdict.distance:  # the earliest of equals stays
            kept, kept_verdict, kept_spans = samples, verdict, spans
        if verdict.ok:
            break
        log.warning("job %s segment %d: take %d looks wrong (%s)%s", job_id, index, take, verdict.reason(),
                    "; speaking it again" if take <= retries else "")
    assert kept is not None and kept_verdict is not None
    if not kept_verdict.ok:
        log.warning("job %s segment %d: kept the closest of %d takes, still suspect: %s",
                    job_id, index, take, kept_verdict.reason())
    if not kept_verdict.finite:  # NaN would make the whole book's loudness NaN
        kept = np.nan_to_num(kept, nan=0.0, posinf=1.0, neginf=-1.0)
    return kept, takes.take_record(take, kept_verdict), kept_spans


# Its result reaches the chord's body through the chord's own list in Redis, not a stored result.
@app.task(name=SYNTHESIZE_TASK, base=JobTask, bind=True, unit="segment {index}")
def synthesize(
    self, job_id: str, index: int, chapter: int, chapter_size: int, spoken: str, voice_id: str, cache_key: str,
    run: int | None = None, speed: float = 1.0,
) -> dict:
    """``speed``: the job's (its plan's; part of ``cache_key``). Its default
    keeps segments sent before speed existed running as they were."""
    engine = worker_model.engine()
    voice = clients.voices().get(voice_id)  # UnknownVoice (deleted meanwhile): permanent
    if voice.model != engine.model.name:
        raise VoiceMismatch(f"voice {voice_id!r} belongs to model {voice.model!r}, this worker holds {engine.model.name!r}")
    worker_model.ensure_speaker(engine, voice)
    # Judged raw (a clipped take is clipped before any fade), then trimmed and
    # faded here, once, so the cache holds segments ready to join.
    started = time.perf_counter()
    raw, record, spans = speak_well(engine, spoken, voice, cache_key, get_settings().take_retries, job_id, index, speed)
    synthesis_s = time.perf_counter() - started
    samples, trimmed = mastering.prepare_segment_at(raw, engine.sample_rate, mastering.Mastering())
    # Word times follow the kept take into the cached audio: less what the trim cut off the front.
    if spans is not None:
        record[timings.SPOKEN_WORDS] = timings.recorded_spans(spans, trimmed, samples.size, engine.sample_rate)
    elif getattr(engine, "aligns_words", False):
        record[timings.UNALIGNED] = "the voice's alignment did not match the spoken words"
    audio = takes.wav_with_record(to_wav_bytes(samples, engine.sample_rate), record)
    # Measured here, once, while the segment is in memory: assembly reads the
    # levels of a book's segments from the cache, not their audio (a pass less).
    level = loudness.SegmentLevel.of(samples, engine.sample_rate, get_settings().sentence_pause_ms / 1000)
    clients.storage().put_bytes(object_key(cache_key), audio, "audio/wav")
    # The cache index, the job's counts, the worker's record and the model's
    # figures, in one Redis step (tasks/state/completion.py).
    spoken_segment = SpokenSegment(
        job_id=job_id, index=index, chapter=chapter, chapter_size=chapter_size, cache_key=cache_key,
        size=len(audio), level=level.to_bytes(), worker=self.request.hostname, model=engine.model.name,
        synthesis_s=synthesis_s, audio_s=samples.size / engine.sample_rate,
    )
    if clients.completion().record(spoken_segment):
        app.send_task(ASSEMBLE_CHAPTER_TASK, args=(job_id, chapter), queue=JOBS_QUEUE, ignore_result=True)
    return {"index": index, "samples": int(samples.size), "sample_rate": engine.sample_rate, "worker": self.request.hostname}


@app.task(name=RELEASE_MEMORY_TASK, bind=True, ignore_result=True)
def release_memory(self, job_id: str) -> None:
    """Runs once per job on each worker that served it, in the process that
    holds the model (it arrives on the worker's direct queue)."""
    worker_model.engine().release_memory()
    gc.collect()
    torch = sys.modules.get("torch")  # only if the engine imported it
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    clients.jobs().record_release(job_id, self.request.hostname)
    clients.fleet().memory_released(self.request.hostname)


@app.task(name=FORGET_SPEAKER_TASK, bind=True, ignore_result=True)
def forget_speaker(self, voice_id: str) -> None:
    """A registered voice was deleted: drop its speaker from this process."""
    engine = worker_model.engine()
    if engine.has_speaker(voice_id):
        engine.forget_speaker(voice_id)
        clients.fleet().speaker_forgotten(self.request.hostname)
