"""Chapter files, each encoded once, and the chord body that joins them.

``chorus.assemble_chapter`` encodes one chapter's file as soon as that
chapter's segments exist (every chapter, so listeners can start before the
book is done); ``chorus.assemble`` joins the chapter files into the book
without encoding again (``remux``), rendering any chapter not recorded yet.

A render streams: segments come from the cache in S3 in order (a few fetched
ahead) and go straight into the encoder, which writes a temporary file
uploaded in parts, so memory does not grow with the chapter. Each segment's
loudness (ITU-R BS.1770 gating blocks and true peak) was measured once, when
it was synthesised, and kept in the cache's index: each voice of a chapter
gets the gain that brings it to the target from its segments' levels (a
chapter read by a narrator and a dialogue voice is equally loud in both), and
the audio is read once, to encode it. Where that gain would pass the
true-peak ceiling, a limiter takes the peaks down (its cost in loudness found
on a bounded sample of the voice's segments), on the segments whose peaks
need it. Voices of models at different rates meet at the book's highest rate.
The book's loudness is gated over all its chapters' blocks together.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import redis
import soxr
from celery.utils.nodenames import worker_direct

from chorus.configs import get_settings
from chorus.tasks import clients, scratch
from chorus.tasks.app import app
from chorus.tasks.audio import formats, loudness, mastering, remux, subtitles, takes, timings
from chorus.tasks.base import JobTask
from chorus.tasks.errors import AssemblyError, ChorusError, JobSettled, ObjectMissing
from chorus.tasks.names import ASSEMBLE_CHAPTER_TASK, ASSEMBLE_TASK, JOBS_QUEUE, RELEASE_MEMORY_TASK
from chorus.tasks.readalong import package as readalong
from chorus.tasks.state.cache import object_key
from chorus.tasks.state.jobs import JobState
from chorus.tasks.state.storage import (
    audiobook_key,
    chapter_key,
    manifest_key,
    original_key,
    plan_key,
    subtitles_key,
    words_key,
)
from chorus.tasks.text.plan import Plan, PlannedSegment

log = logging.getLogger(__name__)

PREFETCH = 8  # segments fetched ahead of the encoder
CALIBRATION_SEGMENTS = 60  # segments kept in memory to find the limiter's effect,
CALIBRATION_SECONDS = 240  # at most this much audio
BLOCK_STEP_S = loudness.BLOCK_SECONDS / loudness.STEP_DIVISIONS  # a level has about one block per step
# A chapter's file is recorded while the job runs, and also once the whole book is done.
CHAPTER_STATES = frozenset({JobState.RUNNING, JobState.ASSEMBLING, JobState.DONE})


def mastering_config() -> mastering.Mastering:
    settings = get_settings()
    return mastering.Mastering(
        sentence_pause_ms=settings.sentence_pause_ms,
        paragraph_pause_ms=settings.paragraph_pause_ms,
        chapter_pause_ms=settings.chapter_pause_ms,
        target_lufs=settings.target_lufs,
        max_true_peak_dbfs=settings.max_true_peak_dbfs,
    )


def _fetch(keys: list[str], held: dict[str, bytes] | None = None) -> Iterator[bytes]:
    """Yield the objects in order while up to PREFETCH requests run ahead;
    those in ``held`` (already read) are not requested again."""
    storage, held = clients.storage(), held or {}

    def get(key: str) -> bytes:
        return held[key] if key in held else storage.get_bytes(key)

    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = [pool.submit(get, key) for key in keys[:PREFETCH]]
        for position in range(len(keys)):
            data = pending[position].result()
            pending[position] = None  # type: ignore[call-overload]  # let it be freed
            if position + PREFETCH < len(keys):
                pending.append(pool.submit(get, keys[position + PREFETCH]))
            yield data


def _segments(
    plan_segments: Sequence[PlannedSegment], held: dict[str, bytes] | None = None,
) -> Iterator[tuple[PlannedSegment, np.ndarray, int, dict | None]]:
    """Each segment's audio, and the record of its takes that the cached WAV
    carries (None for audio cached before takes were judged)."""
    for segment, data in zip(plan_segments, _fetch([object_key(s.cache_key) for s in plan_segments], held)):
        samples, rate = formats.read_audio(data)
        yield segment, samples, rate, takes.record_in_wav(data)


@dataclass
class Rendered:
    duration: float
    sample_rate: int
    loudness_lufs: float
    true_peak_dbfs: float
    segments: list[dict]  # index, chapter, text, start, end; takes, and suspect (why) if the kept take still looks wrong
    chapters: list[dict]  # index, title, start, end
    level: loudness.SegmentLevel  # the file's gating blocks and true peak: a book's loudness merges its chapters'

    def to_dict(self) -> dict:
        """What the book needs of a chapter's render besides its audio (kept beside the file in S3)."""
        return {"duration": self.duration, "sample_rate": self.sample_rate, "loudness_lufs": self.loudness_lufs,
                "true_peak_dbfs": self.true_peak_dbfs, "segments": self.segments, "chapters": self.chapters,
                "level": base64.b64encode(self.level.to_bytes()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: dict) -> Rendered:
        return cls(**{**data, "level": loudness.SegmentLevel.from_bytes(base64.b64decode(data["level"]))})


@dataclass
class _Voice:
    """One voice's loudness in a render, from its segments' levels: each voice
    gets its own gain to the target, so a book read by several voices
    (narrator, dialogue, characters) sounds equally loud throughout."""

    rate: int
    segments: list[PlannedSegment]
    levels: list[loudness.SegmentLevel]
    gain: float = 1.0
    limiting: bool = False


def _levels(plan_segments: Sequence[PlannedSegment]) -> list[loudness.SegmentLevel]:
    """Each segment's loudness level: as measured when it was synthesised
    (kept in the cache's index), else measured now from its audio (segments
    cached before levels were kept, or whose record is gone)."""
    keys = [s.cache_key for s in plan_segments]
    stored = {k: loudness.SegmentLevel.from_bytes(v) for k, v in clients.cache().levels(keys).items()}
    missing = [s for s in plan_segments if s.cache_key not in stored]
    if missing:
        pad_s = get_settings().sentence_pause_ms / 1000
        for segment, samples, rate, _ in _segments(missing):
            stored[segment.cache_key] = loudness.SegmentLevel.of(samples, rate, pad_s)
        log.info("measured %d segments without a stored level", len(missing))
    return [stored[k] for k in keys]


def _calibration(voice: _Voice, held: dict[str, bytes]) -> list[np.ndarray]:
    """A bounded sample of the voice's audio, spread over the book (every
    stride-th segment, at most CALIBRATION_SECONDS), to find the limiter's
    cost. What it reads is kept in ``held`` for the encoding pass."""
    stride = max(1, len(voice.segments) // CALIBRATION_SEGMENTS)
    chosen, seconds = [], 0.0
    for segment, level in zip(voice.segments[::stride], voice.levels[::stride]):
        if seconds >= CALIBRATION_SECONDS:
            break
        chosen.append(segment)
        seconds += level.blocks.size * BLOCK_STEP_S
    keys = [object_key(s.cache_key) for s in chosen]
    held.update(zip(keys, _fetch(keys)))
    return [formats.read_audio(held[key])[0] for key in keys]


def render(plan: Plan, plan_segments: Sequence[PlannedSegment], path: Path, audio_format: str, title: str, author: str,
           *, sample_rate: int | None = None, lead_in: bool = False, whole_frames: bool = False) -> Rendered:
    """Encode the given segments of a plan into one file, in one pass over
    their audio: the gains come from the segments' stored levels.

    ``sample_rate``: the file's (at least its voices' highest). ``lead_in``:
    the chapter pause comes first (every chapter after a book's first starts
    with it, so the book is its chapter files end to end). ``whole_frames``:
    the file ends on a whole codec frame (``Encoder.pad_to_frame``), so the
    next chapter's file joins it with no gap (the last chapter ends where its
    audio ends)."""
    config = mastering_config()
    if not plan_segments:
        raise AssemblyError("no segments to assemble")
    voices: dict[str, _Voice] = {}
    for segment, level in zip(plan_segments, _levels(plan_segments)):
        name = plan.voice_of(segment)
        voice = voices.setdefault(name, _Voice(level.sample_rate, [], []))
        if level.sample_rate != voice.rate:
            raise AssemblyError(f"segment {segment.index} of voice {name!r} is at {level.sample_rate} Hz, "
                                f"its others at {voice.rate} Hz")
        voice.segments.append(segment)
        voice.levels.append(level)
    # Voices at different rates (models differ) meet at the highest.
    sample_rate = max([voice.rate for voice in voices.values()] + ([sample_rate] if sample_rate else []))

    # One gain per voice. Where reaching the target would push peaks over the
    # ceiling (lossy codecs get headroom: they overshoot a little), a limiter
    # takes the peaks down; how much loudness it costs at a given gain is found
    # on a sample of the voice's segments, in memory, and the gain raised to match.
    ceiling = config.ceiling_dbfs(audio_format)
    sample_ceiling = ceiling - mastering.LIMITER_MARGIN_DB
    held: dict[str, bytes] = {}  # segments read for calibration, not read twice
    for voice in voices.values():
        lufs, peak = loudness.loudness_of(voice.levels)
        gain_db = 0.0 if not np.isfinite(lufs) else config.target_lufs - lufs
        voice.limiting = bool(np.isfinite(lufs) and loudness.to_db(peak) + gain_db > ceiling)
        if voice.limiting:
            gain_db = mastering.calibrate_gain(_calibration(voice, held), voice.rate, gain_db, sample_ceiling)
        voice.gain = 10 ** (gain_db / 20)
    sample_ceiling_linear = 10 ** (sample_ceiling / 20)

    def master(samples: np.ndarray, rate: int, voice: _Voice, level: loudness.SegmentLevel) -> tuple[np.ndarray, float]:
        """The segment at its voice's gain, limited where it needs it, and its true peak."""
        if rate != sample_rate:
            samples = soxr.resample(samples, rate, sample_rate, quality="HQ")
        scaled = (samples * voice.gain).astype(np.float32)
        if rate == sample_rate and level.true_peak * voice.gain <= sample_ceiling_linear:
            return scaled, level.true_peak * voice.gain  # nothing over the ceiling: the limiter would pass it
        if voice.limiting:
            return mastering.limit_with_peak(scaled, sample_rate, sample_ceiling)
        return scaled, loudness.true_peak(scaled, sample_rate)

    pauses = {kind: mastering.pause(config, kind, sample_rate) for kind in mastering.PAUSES}
    titles = {c.index: c.title for c in plan.chapters}
    levels = {segment.index: level for voice in voices.values() for segment, level in zip(voice.segments, voice.levels)}
    several_voices = len(voices) > 1
    output = loudness.LoudnessMeter(sample_rate, true_peak=False)  # the peak comes from each segment's
    output_peak = 0.0
    entries: list[dict] = []
    chapters: list[dict] = []
    with formats.Encoder(path, audio_format, sample_rate, title=title, author=author,
                         aac_coder=get_settings().aac_coder) as encoder:
        if lead_in:  # what the join adds (MP3's encoder delay) is part of the pause
            lead = pauses["chapter"][: max(0, pauses["chapter"].size - encoder.join_delay)]
            encoder.write(lead)
            output.add(lead)
        previous = None
        for segment, samples, rate, record in _segments(plan_segments, held):
            if previous is not None:
                kind = "chapter" if segment.chapter != previous.chapter else (
                    "paragraph" if previous.paragraph_end else "sentence")
                encoder.write(pauses[kind])
                output.add(pauses[kind])
            if previous is None or segment.chapter != previous.chapter:
                if chapters:
                    chapters[-1]["end"] = round(encoder.seconds, 3)
                chapter_title = titles.get(segment.chapter) or f"Part {segment.chapter + 1}"
                start = 0.0 if previous is None else encoder.seconds  # a lead-in belongs to its chapter
                encoder.add_chapter(chapter_title, start)
                chapters.append({"index": segment.chapter, "title": chapter_title, "start": round(start, 3)})
            voice = plan.voice_of(segment)
            scaled, peak = master(samples, rate, voices[voice], levels[segment.index])
            output_peak = max(output_peak, peak)
            start = encoder.seconds
            encoder.write(scaled)
            output.add(scaled)
            entry = {"index": segment.index, "chapter": segment.chapter, "text": segment.text,
                     "start": round(start, 3), "end": round(encoder.seconds, 3)}
            if several_voices:
                entry["voice"] = voice
            if record:
                entry.update((name, record[name]) for name in ("takes", "suspect") if name in record)
            entry.update(timings.written_timings(entry, segment.spoken, segment.word_ends(), record))
            entries.append(entry)
            previous = segment
        if whole_frames:
            padding = np.zeros(-encoder.samples_written % encoder.frame_unit, dtype=np.float32)
            encoder.write(padding)
            output.add(padding)
        duration = encoder.seconds
    chapters[-1]["end"] = round(duration, 3)
    return Rendered(duration, sample_rate, round(output.integrated_lufs(), 2), round(loudness.to_db(output_peak), 2),
                    entries, chapters, loudness.SegmentLevel(sample_rate, output.blocks.astype(np.float32), output_peak))


class Uploads:
    """What one task puts in S3 for a job, checked against the job's state and
    taken back if the job ends meanwhile.

    Each upload first checks the job is still in one of ``states`` (else
    ``JobSettled``), and ``commit`` records the result with a guarded
    transition. If anything goes wrong after an upload (the job was cancelled
    or failed between the check and the upload, the commit is refused, or the
    task fails), what this task uploaded is deleted, unless the job is done:
    then the objects are the finished job's own (a redelivered assembly writes
    the same keys)."""

    def __init__(self, job_id: str, states: frozenset[JobState]) -> None:
        self.job_id = job_id
        self.states = states
        self.keys: list[str] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            self.withdraw()

    def _check(self) -> None:
        state = clients.jobs().state(self.job_id)
        if state not in self.states:
            raise JobSettled(f"job {self.job_id} is {state or 'gone'}")

    def file(self, path: Path, key: str, content_type: str) -> None:
        self._check()
        self.keys.append(key)
        clients.storage().upload_file(path, key, content_type)

    def data(self, key: str, data: bytes, content_type: str) -> None:
        self._check()
        self.keys.append(key)
        clients.storage().put_bytes(key, data, content_type)

    def commit(self, applied: bool) -> None:
        """The result of the transition that records the uploads; refused means the job ended."""
        if not applied:
            raise JobSettled(f"job {self.job_id} ended before its {len(self.keys)} new objects were recorded")

    def withdraw(self) -> None:
        try:
            if self.keys and clients.jobs().state(self.job_id) != JobState.DONE:
                clients.storage().delete_keys(self.keys)
                log.info("job %s: took back %d objects", self.job_id, len(self.keys))
        except (ChorusError, redis.RedisError) as exc:  # left for the sweeper, which deletes them with the job
            log.warning("job %s: could not take back %s: %s", self.job_id, self.keys, exc)


def summary_key(job_id: str, chapter: int, audio_format: str) -> str:
    """Where a chapter's render summary (``Rendered.to_dict``) lies, beside its file."""
    return f"{chapter_key(job_id, chapter, audio_format)}.json"


def book_rate(plan: Plan) -> int:
    """The book's sample rate: the highest of its voices' models (from the
    registry: a chapter cannot wait for segments of other chapters), so every
    chapter file is at the same rate and they join as they are."""
    models = clients.registry().models
    rates = [models[name].sample_rate for name in {plan.model, *plan.cast.values()} if name in models]
    if not rates:
        raise AssemblyError(f"none of the book's models ({plan.model}, {', '.join(plan.cast.values())}) is in the registry")
    return max(rates)


def chapter_content_type(audio_format: str) -> str:
    """A chapter file's media type: the book's, except a read-along EPUB's
    chapters, which are its AAC-in-MP4 audio."""
    return "audio/mp4" if audio_format == "epub" else formats.CODECS[audio_format].content_type


def _make_chapter(plan: Plan, chapter: int, audio_format: str, directory: Path, uploads: Uploads) -> tuple[Path, Rendered]:
    """Render one chapter's file and upload it with its summary (the summary
    first: a recorded chapter always has one)."""
    title = " - ".join(t for t in (plan.title, plan.chapters[chapter].title) if t)
    path = directory / f"chapter-{chapter + 1:03d}.{audio_format}"
    rendered = render(plan, plan.chapter_segments(chapter), path, audio_format, title, plan.author,
                      sample_rate=book_rate(plan), lead_in=chapter > 0, whole_frames=chapter < len(plan.chapters) - 1)
    uploads.data(summary_key(uploads.job_id, chapter, audio_format), json.dumps(rendered.to_dict()).encode(),
                 "application/json")
    uploads.file(path, chapter_key(uploads.job_id, chapter, audio_format), chapter_content_type(audio_format))
    return path, rendered


def _made_chapter(job_id: str, chapter: int, audio_format: str, directory: Path) -> tuple[Path, Rendered] | None:
    """A chapter's file and summary as its own task made them, or None if either is missing."""
    storage = clients.storage()
    try:
        summary = Rendered.from_dict(storage.get_json(summary_key(job_id, chapter, audio_format)))
        path = directory / f"chapter-{chapter + 1:03d}.{audio_format}"
        path.write_bytes(storage.get_bytes(chapter_key(job_id, chapter, audio_format)))
    except ObjectMissing as exc:  # recorded before chapters kept a summary, or taken back since
        log.warning("job %s: chapter %d is recorded but %s; rendering it again", job_id, chapter, exc)
        return None
    return path, summary


def _in_book(entry: dict, offset: float) -> dict:
    """A manifest entry (segment or chapter) moved from its chapter file's time to the book's."""
    moved = {**entry, "start": round(entry["start"] + offset, 3), "end": round(entry["end"] + offset, 3)}
    if "words" in entry:
        moved["words"] = [_in_book(word, offset) for word in entry["words"]]
    return moved


@dataclass
class Book:
    duration: float
    sample_rate: int
    loudness_lufs: float
    true_peak_dbfs: float
    segments: list[dict]
    chapters: list[dict]  # index, title, start, end, loudness_lufs, true_peak_dbfs


def book_of(made: Sequence[tuple[Path, Rendered]], starts: Sequence[float], duration: float) -> Book:
    """The book's entries from its chapters' renders, each moved to its
    chapter's start in the book; the book's loudness is gated over all its
    chapters' blocks together."""
    segments, chapters = [], []
    for start, (_, rendered) in zip(starts, made):
        segments += [_in_book(entry, start) for entry in rendered.segments]
        chapters += [{**_in_book(chapter, start), "loudness_lufs": rendered.loudness_lufs,
                      "true_peak_dbfs": rendered.true_peak_dbfs} for chapter in rendered.chapters]
    chapters[-1]["end"] = round(duration, 3)
    lufs, peak = loudness.loudness_of(r.level for _, r in made)
    return Book(duration, made[0][1].sample_rate, round(lufs, 2), round(loudness.to_db(peak), 2), segments, chapters)


def join_chapters(plan: Plan, made: Sequence[tuple[Path, Rendered]], path: Path, audio_format: str) -> Book:
    """The book from its chapter files, without encoding again (``remux``),
    its chapters starting where the joined file says."""
    joined = remux.join([p for p, _ in made], [r.chapters[0]["title"] for _, r in made], path, audio_format,
                        plan.title, plan.author)
    return book_of(made, joined.starts, joined.duration)


@app.task(name=ASSEMBLE_CHAPTER_TASK, base=JobTask, unit="chapter {chapter}", queue=JOBS_QUEUE)
def assemble_chapter(job_id: str, chapter: int) -> None:
    """One chapter's file, encoded once, as soon as its segments exist; the
    book is joined from these files."""
    jobs, storage = clients.jobs(), clients.storage()
    job = jobs.get(job_id)
    plan = Plan.from_dict(storage.get_json(plan_key(job_id)))
    with scratch.directory("chapter-") as tmp, Uploads(job_id, CHAPTER_STATES) as uploads:
        _, rendered = _make_chapter(plan, chapter, job.format, Path(tmp), uploads)
        uploads.commit(jobs.chapter_ready(job_id, chapter, chapter_key(job_id, chapter, job.format), rendered.duration))


def _readalong(job_id: str, plan: Plan, book: Book, chapter_files: Sequence[Path], path: Path) -> None:
    """The read-along EPUB at ``path``: the book's own pages where it came
    from an EPUB (stored at submission), and each chapter's audio file."""
    try:
        original = clients.storage().get_bytes(original_key(job_id))
    except ObjectMissing:
        original = None
    audio = {chapter["index"]: file for chapter, file in zip(book.chapters, chapter_files)}
    identifier = f"urn:uuid:{uuid.UUID(job_id)}"  # job ids are UUIDs
    readalong.write(path, readalong.Readalong(plan, identifier, book.segments, book.chapters, audio), original)


@app.task(name=ASSEMBLE_TASK, base=JobTask, unit="assembly", queue=JOBS_QUEUE)
def assemble(results: list[dict], job_id: str, run: int | None = None) -> None:
    """The book from its chapter files. A chapter whose file is not recorded
    yet (its task may still wait in the queue, perhaps behind this one) is
    rendered here rather than waited for: a render writes the same keys
    whoever makes it, so a redelivered or concurrent one changes nothing."""
    jobs, storage = clients.jobs(), clients.storage()
    if not jobs.start_assembly(job_id, run=run):  # went back to the queue, or ended, since this was sent
        raise JobSettled(f"job {job_id} is not running")
    job = jobs.get(job_id)
    plan = Plan.from_dict(storage.get_json(plan_key(job_id)))
    codec = formats.CODECS[job.format]
    with scratch.directory("assemble-") as tmp, Uploads(job_id, frozenset({JobState.ASSEMBLING})) as uploads:
        made = []
        for chapter in range(len(plan.chapters)):
            ready = (_made_chapter(job_id, chapter, job.format, Path(tmp)) if chapter in job.chapters else None)
            if ready is None:
                ready = _make_chapter(plan, chapter, job.format, Path(tmp), uploads)
                uploads.commit(jobs.chapter_ready(job_id, chapter, chapter_key(job_id, chapter, job.format),
                                                  ready[1].duration))
            made.append(ready)
        path = Path(tmp) / f"audiobook.{job.format}"
        if job.format == "epub":
            book = book_of(made, list(itertools.accumulate((r.duration for _, r in made[:-1]), initial=0.0)),
                           sum(r.duration for _, r in made))
            _readalong(job_id, plan, book, [p for p, _ in made], path)
        else:
            book = join_chapters(plan, made, path, job.format)
        uploads.file(path, audiobook_key(job_id, job.format), codec.content_type)

        suspect = sum(1 for s in book.segments if "suspect" in s)
        cues = subtitles.cues_from_segments(book.segments)
        uploads.data(subtitles_key(job_id, "srt"), subtitles.to_srt(cues).encode(), "application/x-subrip")
        uploads.data(subtitles_key(job_id, "vtt"), subtitles.to_vtt(cues).encode(), "text/vtt")
        manifest = {
            "id": job_id,
            "title": plan.title,
            "author": plan.author,
            "voice": job.voice,
            "model": plan.model,
            "voices": {plan.voice: plan.model, **plan.cast},  # every voice that reads in it, and its model
            "format": job.format,
            "sample_rate": book.sample_rate,
            "duration_seconds": round(book.duration, 3),
            "loudness_lufs": book.loudness_lufs,
            "true_peak_dbfs": book.true_peak_dbfs,
            "cache_hits": job.cache_hits,
            # Segments spoken more than once because a take looked wrong, and
            # those whose kept take still does (each says why: "suspect").
            "retried_segments": sum(1 for s in book.segments if s.get("takes", 1) > 1),
            "suspect_segments": suspect,
            "chapters": book.chapters,
            "segments": book.segments,
        }
        uploads.data(manifest_key(job_id), json.dumps(manifest, ensure_ascii=False).encode("utf-8"), "application/json")
        words = json.dumps(timings.words_document(book.segments), ensure_ascii=False)
        uploads.data(words_key(job_id), words.encode("utf-8"), "application/json")
        artefacts = {
            "audio": audiobook_key(job_id, job.format),
            "manifest": manifest_key(job_id),
            "srt": subtitles_key(job_id, "srt"),
            "vtt": subtitles_key(job_id, "vtt"),
            "words": words_key(job_id),
        }
        uploads.commit(jobs.finish(job_id, artefacts["audio"], artefacts["manifest"], book.duration, artefacts,
                                   suspect_segments=suspect))

    # Once per job, not per segment: each worker that synthesised part of this
    # job frees memory in the process that holds its model.
    for worker in sorted({r["worker"] for r in results if "worker" in r}):
        app.send_task(RELEASE_MEMORY_TASK, args=(job_id,), queue=worker_direct(worker), ignore_result=True)
    log.info("job %s: %.1f s of audio, %.1f LUFS, %d suspect segments", job_id, book.duration, book.loudness_lufs, suspect)
