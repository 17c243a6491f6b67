"""``chorus.assemble``, the chord body: join a job's segments into one audiobook.

Segments are read from S3 in order and streamed into the encoder, which writes a
temporary file uploaded in parts, so memory does not grow with the book. Then
the manifest is written, the intermediate segments deleted, the job marked done
and each worker that served the job asked, once, to release memory.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from celery.utils.nodenames import worker_direct

from configs import get_settings
from tasks import audio, context
from tasks.app import JOBS_QUEUE, app
from tasks.errors import AssemblyError
from tasks.storage import audiobook_key, manifest_key, plan_key

log = logging.getLogger(__name__)

RELEASE_TASK = "chorus.release_memory"
PREFETCH = 8  # segments fetched ahead of the encoder


def _prefetch(keys: list[str]) -> Iterator[bytes]:
    """Yield the objects in order while up to PREFETCH requests run ahead."""
    storage = context.storage()
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [pool.submit(storage.get_bytes, key) for key in keys[:PREFETCH]]
        for position in range(len(keys)):
            data = pending[position].result()
            pending[position] = None  # type: ignore[call-overload]  # let it be freed
            ahead = position + PREFETCH
            if ahead < len(keys):
                pending.append(pool.submit(storage.get_bytes, keys[ahead]))
            yield data


def _check_results(results: Iterable[dict], count: int) -> list[dict]:
    ordered = sorted(results, key=lambda r: r["index"])
    indexes = [r["index"] for r in ordered]
    if indexes != list(range(count)):
        missing = sorted(set(range(count)) - set(indexes))
        raise AssemblyError(f"segments missing from the chord result: {missing[:10]}")
    return ordered


def download_name(title: str, audio_format: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "", title).strip() or "audiobook"
    return f"{stem[:80]}.{audio_format}"


@app.task(name="chorus.assemble", bind=True, queue=JOBS_QUEUE)
def assemble(self, results: list[dict], job_id: str) -> dict:
    jobs, storage, settings = context.jobs(), context.storage(), get_settings()
    job = jobs.get(job_id)
    if job.state.final:  # redelivered after it already finished, or cancelled
        return {"job": job_id, "state": job.state.value}
    jobs.assembling(job_id)
    try:
        plan = storage.get_json(plan_key(job_id))
        segments = plan["segments"]
        ordered = _check_results(results, len(segments))
        sample_rate = ordered[0]["sample_rate"]
        codec = audio.CODECS[job.format]
        sentence_pause = audio.silence(settings.sentence_pause_ms / 1000, sample_rate)
        paragraph_pause = audio.silence(settings.paragraph_pause_ms / 1000, sample_rate)

        entries = []
        with tempfile.TemporaryDirectory(prefix="chorus-assemble-") as tmp:
            path = Path(tmp) / f"audiobook.{job.format}"
            with audio.Encoder(path, job.format, sample_rate) as encoder:
                for segment, result, data in zip(segments, ordered, _prefetch([r["key"] for r in ordered])):
                    samples, rate = audio.read_audio(data)
                    if rate != sample_rate:
                        raise AssemblyError(f"segment {segment['index']} is at {rate} Hz, the job at {sample_rate} Hz")
                    start = encoder.seconds
                    encoder.write(samples)
                    entries.append(
                        {"index": segment["index"], "text": segment["text"],
                         "start": round(start, 3), "end": round(encoder.seconds, 3)}
                    )
                    if segment["index"] < len(segments) - 1:
                        encoder.write(paragraph_pause if segment["paragraph_end"] else sentence_pause)
                duration = encoder.seconds
            storage.upload_file(path, audiobook_key(job_id, job.format), codec.content_type)

        manifest = {
            "id": job_id,
            "title": job.title,
            "voice": job.voice,
            "model": plan["model"],
            "format": job.format,
            "sample_rate": sample_rate,
            "duration_seconds": round(duration, 3),
            "segments": entries,
        }
        storage.put_json(manifest_key(job_id), manifest)
        storage.delete_keys([r["key"] for r in ordered])
        jobs.finish(job_id, audiobook_key(job_id, job.format), manifest_key(job_id), duration)
    except Exception as exc:
        jobs.fail(job_id, f"assembly failed: {type(exc).__name__}: {exc}")
        raise

    # Once per job, not per segment: each worker that synthesised part of this
    # job frees memory in the process that holds its model.
    for worker in sorted({r["worker"] for r in ordered}):
        app.send_task(RELEASE_TASK, args=(job_id,), queue=worker_direct(worker))
    log.info("job %s: %.1f s of audio from %d segments", job_id, duration, len(segments))
    return {"job": job_id, "state": "done", "audio_seconds": round(duration, 3)}
