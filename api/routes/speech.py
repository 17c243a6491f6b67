"""``POST /v1/audio/speech``: OpenAI's speech API, spoken by Chorus's workers.

A request is a small job like any other: the same planner makes its plan,
the same key limits hold, the same workers speak its segments (a job's first
segments go ahead of any job's later ones, see ``tasks/pipeline.py``), and the
same segment cache answers for text spoken before. What differs is the way
back: instead of waiting for the assembled file, the response streams each
segment, in order, the moment it is in the cache, with the book's pauses
between them, encoded as it goes (``tasks/audio/stream.py``). The job itself
still finishes as usual, so its file, manifest and subtitles are there too
(its id is in the ``X-Chorus-Job`` header).

The response starts only once the first segment is there, so a job that fails
before any audio gets a real error status; one that fails later ends the
stream early (HTTP cannot take back a 200). A client that goes away cancels
its job.

Segments are streamed as their takes were kept: trimmed and faded, but not
brought to the book's loudness target, which needs the whole text measured
first (the job's own file is).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from chorus.api.deps import AsyncRedisDep, CallerDep, JobsDep, PlannerDep, SettingsDep, StorageDep
from chorus.api.schemas import ErrorDocument, SpeechRequest
from chorus.api.submission import Received, submit_planned
from chorus.configs import Settings
from chorus.configs.mastering import Mastering
from chorus.tasks.app import JOB_STAMP
from chorus.tasks.app import app as celery_app
from chorus.tasks.errors import SpeechFailed, TextTooLarge
from chorus.tasks.state.cache import object_key
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.storage import Storage

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/audio", tags=["speech"])

# What each OpenAI response format becomes as the job's own file.
JOB_FORMAT = {"mp3": "mp3", "opus": "opus", "aac": "m4b", "flac": "flac", "wav": "wav", "pcm": "wav"}
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
               "wav": "audio/wav", "pcm": "audio/pcm"}
POLL_S = (0.02, 0.25)  # first and longest wait between looks at a segment that is not done yet


def chorus_voice(name: str, settings: Settings) -> str:
    """OpenAI's voice names through the configured map; anything else is a Chorus voice id."""
    if name in settings.openai_voices:
        return settings.openai_voices[name]
    if name in OPENAI_VOICES:
        return settings.default_voice
    return name


OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
                           "verse", "marin", "cedar"})


class ListenerGone(Exception):
    """The client closed the connection; nobody will hear the rest."""


class SegmentStream:
    """One speech job's segments, in order, as they are done."""

    def __init__(
        self, job_id: str, plan: dict[str, Any], request: Request, jobs: JobStore, storage: Storage, client: Any,
    ) -> None:
        self.job_id = job_id
        self.segments = plan["segments"]
        self.request = request
        self.jobs, self.storage, self.client = jobs, storage, client
        self.next = 0

    async def _wait_for(self, index: int) -> None:
        """Until segment ``index`` is in the cache; SpeechFailed if the job ended without it."""
        pause = POLL_S[0]
        while True:
            state, done = await self.jobs.segment_done_async(self.client, self.job_id, index)
            if done:
                return
            if state is None or state.final:
                error = ""
                if state is not None:
                    error = (await run_in_threadpool(self.jobs.get, self.job_id)).error
                raise SpeechFailed(f"job {self.job_id} is {state or 'gone'} before segment {index}: {error}".rstrip(": "))
            # A listener who left is noticed here, while waiting, not only
            # when the next segment's bytes find the connection closed.
            if await self.request.is_disconnected():
                raise ListenerGone(f"the client of job {self.job_id} went away")
            await asyncio.sleep(pause)
            pause = min(POLL_S[1], pause * 1.5)

    async def take(self) -> tuple[dict[str, Any], bytes] | None:
        """The next segment of the plan and its cached WAV; None after the last."""
        if self.next >= len(self.segments):
            return None
        segment = self.segments[self.next]
        await self._wait_for(segment["index"])
        self.next += 1
        return segment, await run_in_threadpool(self.storage.get_bytes, object_key(segment["cache_key"]))


def _open_encoder(response_format: str, first_wav: bytes) -> Any:
    """An encoder at the first segment's rate. The audio stack (PyAV, numpy
    work) is imported and run only here and in ``_encode``, in worker threads,
    never on the event loop."""
    from chorus.tasks.audio import stream as encoding  # only in processes that stream

    return encoding.StreamEncoder(response_format, encoding.segment_rate(first_wav))


def _encode(encoder: Any, wav: bytes, pause_ms: int) -> tuple[bytes, float]:
    """One cached segment, at the stream's rate, after its pause, encoded; and
    the seconds of the segment's own audio (the pause not counted)."""
    from chorus.tasks.audio import stream as encoding

    samples, rate = encoding.read_segment_wav(wav)
    samples = encoding.conform(samples, rate, encoder.input_rate)
    seconds = samples.size / encoder.input_rate
    if pause_ms:
        samples = encoding.after_pause(samples, pause_ms, encoder.input_rate)
    return encoder.write(samples), seconds


@dataclass(frozen=True)
class Spoken:
    """One segment as it goes out: its plan entry, its cached WAV, its encoded
    bytes, and where its audio lies in the stream (seconds from the start).
    The last item of a stream is the encoder's tail: ``segment`` is None."""

    segment: dict[str, Any] | None
    wav: bytes
    chunk: bytes
    start: float
    seconds: float


async def spoken_segments(
    stream: SegmentStream, first: tuple[dict[str, Any], bytes], response_format: str,
) -> AsyncIterator[Spoken]:
    """Encode the segments as they come; pauses as in the book: longer after a
    paragraph. A stream that does not reach its end cancels its job."""
    config = Mastering()
    segment, wav = first
    encoder = await run_in_threadpool(_open_encoder, response_format, wav)
    pause_ms = 0
    at = 0.0  # seconds of audio before this segment's pause
    completed = False
    try:
        while True:
            chunk, seconds = await run_in_threadpool(_encode, encoder, wav, pause_ms)
            at += pause_ms / 1000
            yield Spoken(segment, wav, chunk, at, seconds)
            at += seconds
            pause_ms = config.paragraph_pause_ms if segment["paragraph_end"] else config.sentence_pause_ms
            following = await stream.take()
            if following is None:
                break
            segment, wav = following
        yield Spoken(None, b"", await run_in_threadpool(encoder.close), at, 0.0)
        completed = True
    except (SpeechFailed, ListenerGone) as exc:  # the headers are sent: all that is left is to stop
        log.warning("speech stream of job %s ends early: %s", stream.job_id, exc)
    finally:
        if not completed:
            with anyio.CancelScope(shield=True):  # even when the server cancelled the stream
                await run_in_threadpool(_cancel, stream.jobs, stream.job_id)


async def _audio(stream: SegmentStream, first: tuple[dict[str, Any], bytes], response_format: str) -> AsyncIterator[bytes]:
    async for spoken in spoken_segments(stream, first, response_format):
        if spoken.chunk:
            yield spoken.chunk


def _cancel(jobs: JobStore, job_id: str) -> None:
    """The listener left (or the job failed): nobody will hear the rest."""
    if jobs.cancel(job_id):
        celery_app.control.revoke_by_stamped_headers({JOB_STAMP: job_id})


async def start_speech(
    text: str, voice: str, job_format: str, speed: float, request: Request, caller: CallerDep, planner: PlannerDep,
    jobs: JobStore, storage: Storage, client: Any, settings: Settings,
) -> tuple[SegmentStream, tuple[dict[str, Any], bytes]]:
    """Plan and submit a speech job, and wait for its first segment; a job that
    fails before it is cancelled and its error raised (a real status code)."""
    if len(text) > settings.speech_max_chars:
        raise TextTooLarge(
            f"input of {len(text)} characters; this endpoint speaks at most {settings.speech_max_chars}. "
            "Submit longer texts to POST /v1/jobs"
        )
    document = {"text": text, "voice": chorus_voice(voice, settings), "format": job_format, "speed": speed}
    started = time.perf_counter()
    received = Received("json", json.dumps(document).encode())
    job_id, plan_document = await planner.run(submit_planned, received, caller, owner=caller.id,
                                              size=len(received.body), small=True)
    plan = await run_in_threadpool(json.loads, plan_document)
    stream = SegmentStream(job_id, plan, request, jobs, storage, client)
    try:
        first = await stream.take()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_cancel, jobs, job_id)
        raise
    assert first is not None  # an accepted plan has segments
    log.info("speech job %s: first segment after %.0f ms", job_id, (time.perf_counter() - started) * 1000)
    return stream, first


@router.post(
    "/speech",
    response_class=StreamingResponse,
    responses={
        200: {"content": {media: {"schema": {"type": "string", "format": "binary"}} for media in MEDIA_TYPES.values()},
              "description": "The audio, streamed as its segments are spoken"},
        **{code: {"model": ErrorDocument} for code in (413, 422, 429, 502)},
    },
    summary="Speak a short text (OpenAI-compatible), streamed as it is spoken",
)
async def create_speech(
    body: SpeechRequest, request: Request, caller: CallerDep, planner: PlannerDep, jobs: JobsDep, storage: StorageDep,
    client: AsyncRedisDep, settings: SettingsDep,
) -> StreamingResponse:
    stream, first = await start_speech(body.input, body.voice, JOB_FORMAT[body.response_format], body.speed,
                                       request, caller, planner, jobs, storage, client, settings)
    return StreamingResponse(
        _audio(stream, first, body.response_format), media_type=MEDIA_TYPES[body.response_format],
        headers={"X-Chorus-Job": stream.job_id},
    )
