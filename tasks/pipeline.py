"""``chorus.split``: read a job's book, cut it into segments and launch its chord.

Each segment gets its spoken form (numbers, dates, abbreviations read out) and
a cache key made of its content. Segments already in the cache count as done
at once; the chord's header holds one ``chorus.synthesize`` per missing
segment, sent by name to the voice's model queue (this module never imports
``workers``). The body is ``chorus.assemble`` on ``chorus.jobs``; its error
callback marks the job failed. Chapters whose segments are all cached are
assembled right away.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from celery import chord

from configs import Model, Voice, get_settings
from tasks import books, context, text
from tasks.app import JOBS_QUEUE, app
from tasks.assemble import assemble, assemble_chapter
from tasks.cache import content_key
from tasks.mastering import Mastering
from tasks.normalise import spoken_form
from tasks.storage import input_key, plan_key

log = logging.getLogger(__name__)

SYNTHESIZE_TASK = "chorus.synthesize"
PRIORITY_BAND = 20  # segments per priority level; beyond 9 levels all share the lowest
INPUT_NAMES = {"text": "input.txt", "markdown": "input.md", "epub": "input.epub"}


@dataclass(frozen=True)
class PlannedSegment:
    index: int
    chapter: int
    text: str  # as written: for the manifest and subtitles
    spoken: str  # what the engine says
    paragraph_end: bool
    cache_key: str


def synthesis_settings(model: Model) -> dict:
    """What, besides text and voice, decides a segment's audio: part of its cache key
    (the worker trims and fades each segment with these settings)."""
    config = Mastering()
    return {"options": model.options, "trim_db": config.trim_threshold_db, "trim_keep_ms": config.trim_keep_ms,
            "fade_ms": config.fade_ms}


def plan_book(book: books.Book, voice: Voice, model: Model) -> tuple[list[dict], list[PlannedSegment]]:
    """Chapters and segments of a book. The book's own title (and author) open
    it, and each chapter's title is spoken before the chapter."""
    settings = synthesis_settings(model)
    chapters, segments = [], []
    opening = ", by ".join(part for part in (book.title, book.author) if part) if book.title else ""
    for number, chapter in enumerate(book.chapters):
        first = len(segments)
        parts = [opening if number == 0 else "", chapter.title, chapter.text]
        pieces = text.split("\n\n".join(p for p in parts if p), model.max_segment_chars)
        for piece in pieces:
            spoken = spoken_form(piece.text, voice.language)
            segments.append(
                PlannedSegment(
                    index=len(segments), chapter=number, text=piece.text, spoken=spoken,
                    paragraph_end=piece.paragraph_end,
                    cache_key=content_key(spoken, voice.id, model.name, model.version, settings),
                )
            )
        chapters.append({"index": number, "title": chapter.title, "first": first, "count": len(segments) - first})
    return chapters, segments


@app.task(name="chorus.split", queue=JOBS_QUEUE)
def split(job_id: str) -> int:
    jobs, storage, cache = context.jobs(), context.storage(), context.cache()
    job = jobs.get(job_id)
    if job.state.final:
        return 0
    try:
        voice = context.voices().get(job.voice)
        model = context.registry().models[voice.model]
        book = books.read_book(storage.get_bytes(input_key(job_id)), INPUT_NAMES[job.input_kind])
        chapters, segments = plan_book(book, voice, model)
        if not segments:
            raise ValueError("the text has nothing speakable")
        cached = cache.hits(s.cache_key for s in segments)
        storage.put_json(
            plan_key(job_id),
            {
                "voice": voice.id, "model": model.name, "language": voice.language,
                "title": job.title or book.title, "author": job.author or book.author,
                "chapters": chapters,
                "segments": [
                    {"index": s.index, "chapter": s.chapter, "text": s.text, "spoken": s.spoken,
                     "paragraph_end": s.paragraph_end, "cache_key": s.cache_key}
                    for s in segments
                ],
            },
        )
    except Exception as exc:
        jobs.fail(job_id, f"split failed: {type(exc).__name__}: {exc}")
        raise

    hits = [s for s in segments if s.cache_key in cached]
    misses = [s for s in segments if s.cache_key not in cached]
    sizes = {c["index"]: c["count"] for c in chapters}
    settings = get_settings()
    deadline = time.time() + settings.job_deadline_base_s + settings.job_deadline_per_segment_s * len(misses)
    jobs.start(
        job_id, len(segments), cache_hits=len(hits), chapter_titles=[c["title"] for c in chapters],
        title=job.title or book.title, author=job.author or book.author, deadline_at=deadline,
    )
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
                    "spoken": s.spoken, "voice_id": voice.id, "cache_key": s.cache_key,
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
    log.info("job %s: %d segments (%d cached) in %d chapters on %s", job_id, len(segments), len(hits), len(chapters), model.queue)
    return len(segments)


@app.task(name="chorus.job_failed", queue=JOBS_QUEUE)
def job_failed(request: object, exc: BaseException, traceback: object, job_id: str) -> None:
    """Error callback of the chord: a failed segment or assembly fails the job.

    A segment that gave up has usually recorded a more precise reason already;
    the first reason is kept."""
    context.jobs().fail(job_id, f"{type(exc).__name__}: {exc}")
