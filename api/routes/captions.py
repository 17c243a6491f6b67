"""Captioned speech: Kokoro-FastAPI's ``/dev/captioned_speech``, spoken by Chorus.

Kokoro's clients post the same JSON as to OpenAI's speech endpoint, plus
``stream`` (default true) and ``return_timestamps``, and read JSON back:
``{"audio": base64, "audio_format": media type, "timestamps": [{"word",
"start_time", "end_time"}]}``. Not streamed, that is one object for the whole
text; streamed, it is one object per line (``application/x-ndjson``), one
per sentence as it is spoken, each with the next bytes of one audio stream and
the timestamps of the words in them, in seconds from the start of the whole
stream (concatenate every line's decoded ``audio`` for the file). The same route answers at
``/v1/audio/captioned_speech``.

The speech itself is ``POST /v1/audio/speech``'s (``speech.py``): the same
job, the same segment cache, the same way back as segments are done. Word
timings come from the cached segment's record (``spoken_words``, where the
engine aligns its output), named by the input's own words: a written word
said as several ("1818" as "eighteen eighteen") spans them all. A voice whose
engine gives none gets one entry per sentence, its ``word`` the whole
sentence as written.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from chorus.api.deps import AsyncRedisDep, CallerDep, JobsDep, PlannerDep, SettingsDep, StorageDep
from chorus.api.routes.speech import JOB_FORMAT, MEDIA_TYPES, Spoken, spoken_segments, start_speech
from chorus.api.schemas import CaptionedSpeechRequest, CaptionedSpeechResponse, ErrorDocument
from chorus.tasks.errors import SpeechFailed

router = APIRouter(tags=["speech"])

PATHS = ("/dev/captioned_speech", "/v1/audio/captioned_speech")  # Kokoro's own path, and beside OpenAI's
NDJSON = "application/x-ndjson"  # Kokoro labels its lines application/json; its clients read them line by line


def segment_timestamps(segment: dict[str, Any], wav: bytes, start: float, seconds: float) -> list[dict[str, Any]]:
    """The timestamps of one segment's words, placed at ``start`` in the
    stream: one per WRITTEN word (as the input has it, "1818," not "eighteen
    eighteen") where its cached record has word timings for its spoken form,
    mapped by the plan's written<->spoken correspondence as the book's
    manifest maps them (``tasks/audio/timings.py``); else one for the whole
    sentence as written."""
    from chorus.tasks.audio import timings  # beside the audio, in a worker thread
    from chorus.tasks.audio.takes import record_in_wav
    from chorus.tasks.text.words import correspondence

    ends = segment.get("words")
    ends = correspondence(segment["text"], segment["spoken"]) if ends is None else ends
    entry = {"text": segment["text"], "start": round(start, 3), "end": round(start + seconds, 3)}
    timed = timings.written_timings(entry, segment["spoken"], ends, record_in_wav(wav))
    if timed["timing"] == timings.WORD:
        return [{"word": w["text"], "start_time": w["start"], "end_time": w["end"]} for w in timed["words"]]
    return [{"word": segment["text"], "start_time": entry["start"], "end_time": entry["end"]}]


def _timestamps(spoken: Spoken, wanted: bool) -> list[dict[str, Any]]:
    if spoken.segment is None or not wanted:
        return []
    return segment_timestamps(spoken.segment, spoken.wav, spoken.start, spoken.seconds)


def _line(chunk: bytes, media_type: str, timestamps: list[dict[str, Any]]) -> bytes:
    document = {"audio": base64.b64encode(chunk).decode("ascii"), "audio_format": media_type, "timestamps": timestamps}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


async def _lines(parts: AsyncIterator[Spoken], media_type: str, wanted: bool) -> AsyncIterator[bytes]:
    """One line per segment (and one for the encoder's tail, if it has bytes)."""
    async for spoken in parts:
        timestamps = await run_in_threadpool(_timestamps, spoken, wanted)
        if spoken.chunk or timestamps:
            yield await run_in_threadpool(_line, spoken.chunk, media_type, timestamps)


async def create_captioned_speech(
    body: CaptionedSpeechRequest, request: Request, caller: CallerDep, planner: PlannerDep, jobs: JobsDep,
    storage: StorageDep, client: AsyncRedisDep, settings: SettingsDep,
) -> Any:
    stream, first = await start_speech(body.input, body.voice, JOB_FORMAT[body.response_format], body.speed,
                                       request, caller, planner, jobs, storage, client, settings)
    media_type = MEDIA_TYPES[body.response_format]
    headers = {"X-Chorus-Job": stream.job_id}
    parts = spoken_segments(stream, first, body.response_format)
    if body.stream:
        return StreamingResponse(_lines(parts, media_type, body.return_timestamps), media_type=NDJSON,
                                 headers=headers)
    chunks: list[bytes] = []
    timestamps: list[dict[str, Any]] = []
    async for spoken in parts:
        chunks.append(spoken.chunk)
        timestamps += await run_in_threadpool(_timestamps, spoken, body.return_timestamps)
    if spoken.segment is not None:  # no tail: the job failed (or the client left) before the end
        job = await run_in_threadpool(stream.jobs.get, stream.job_id)
        raise SpeechFailed(f"job {stream.job_id} is {job.state.value} before all was spoken: {job.error}".rstrip(": "))
    # Megabytes of base64 for a long text: encoded in a worker thread, not on the event loop.
    document = await run_in_threadpool(lambda: _line(b"".join(chunks), media_type, timestamps))
    return Response(document, media_type="application/json", headers=headers)


for path in PATHS:
    router.add_api_route(
        path, create_captioned_speech, methods=["POST"],
        response_model=CaptionedSpeechResponse,
        responses={200: {"content": {NDJSON: {"schema": {"type": "string"}}},
                         "description": "One object, or (stream) one object per line as each sentence is spoken"},
                   **{code: {"model": ErrorDocument} for code in (413, 422, 429, 502)}},
        summary="Speak a short text with word timestamps (Kokoro-FastAPI's captioned speech)",
    )
