"""One submission, read, checked, planned and enqueued.

``prepare`` is the whole of what the API decides about a book, in one pure
function: parse the request, read the book (any format, any common
encoding), choose the voice, check the caller's limits and the voice's
language, and make the plan (``tasks/text/plan.py``) that every task of the
job then follows. What it returns is checked completely, so an accepted job
cannot fail later for a reason that was visible in its input.

``submit`` is what the API runs for ``POST /v1/jobs``, in its planner
processes (``api/planner.py``), never in the process that serves requests:
``prepare``, then ``enqueue`` (record the job, refused atomically at the key's
concurrency limit; store the plan; send ``chorus.split``). So the API's own
process spends no CPU and no blocking I/O on a submission: it reads the body
and awaits the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Literal

from pydantic import ValidationError

from chorus.api.schemas import JobRequest
from chorus.configs import Model, Settings, Voice, get_settings
from chorus.tasks.app import app as celery_app
from chorus.tasks.destinations import Policy, check_webhook_url
from chorus.tasks.errors import EmptyText, InputError, TextTooLarge, TooManyJobs, UnknownVoice
from chorus.tasks.names import JOBS_QUEUE, SPLIT_TASK
from chorus.tasks.state.batches import BatchEntry
from chorus.tasks.state.jobs import Job, JobStore
from chorus.tasks.state.keys import ApiKey
from chorus.tasks.state.storage import Storage, original_key, plan_key
from chorus.tasks.text import script
from chorus.tasks.text.book import Book, one_line
from chorus.tasks.text.casting import Casting, has_tags, tagged_voices
from chorus.tasks.text.clean import has_speakable
from chorus.tasks.text.epub import is_epub_zip
from chorus.tasks.text.plan import Plan, make_plan
from chorus.tasks.text.read import read_book, read_text
from chorus.tasks.text.spoken.lexicon import Entry, merge


@dataclass(frozen=True)
class Received:
    """What the HTTP layer read off the wire; nothing parsed yet."""

    kind: Literal["json", "upload"]
    body: bytes  # the JSON document, or the uploaded file
    filename: str = ""  # the upload's file name
    fields: dict[str, str] = field(default_factory=dict)  # the upload's other form fields


@dataclass(frozen=True)
class Submission:
    """What the API records of an accepted submission; the plan travels as the
    JSON document that is stored, so the API process never serialises it."""

    voice: str
    format: str
    title: str
    author: str
    segments: int
    chapter_titles: list[str]
    plan_document: bytes
    webhook_url: str = ""  # checked against the operator's allow-list (again at each delivery)
    chapter_sizes: list[int] = field(default_factory=list)  # segments per chapter
    original: bytes = b""  # an uploaded EPUB whose pages a read-along EPUB keeps

    @classmethod
    def of(cls, plan: Plan, audio_format: str) -> Submission:
        document = json.dumps(plan.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(plan.voice, audio_format, plan.title, plan.author, len(plan.segments),
                   [c.title for c in plan.chapters], document, chapter_sizes=[c.count for c in plan.chapters])


def prepare(
    received: Received, caller: ApiKey, voices: Mapping[str, Voice], models: Mapping[str, Model], settings: Settings,
    key_lexicon: tuple[Entry, ...] = (),
) -> Submission:
    """Read, check and plan one submission; raises an ``InputError`` for anything refused.
    ``key_lexicon``: the caller's pronunciation entries as they are now; the
    request's own override them word by word, and the plan keeps the result."""
    request = _request(received)
    if received.kind == "json":
        book = _read_json_text(request.text, settings.max_text_chars)
        fallback_title = ""
    else:
        book = read_book(received.body, received.filename, max_chars=settings.max_text_chars)
        fallback_title = PurePath(received.filename).stem
    title = one_line(request.title) or book.title or one_line(fallback_title)
    author = one_line(request.author) or book.author
    for name, value in (("title", title), ("author", author)):
        if len(value) > settings.max_title_chars:
            raise InputError(f"{name} longer than {settings.max_title_chars} characters")

    voice = _voice(request.voice or settings.default_voice, voices)
    characters = sum(len(chapter.text) for chapter in book.chapters)
    if characters > caller.max_text_chars:
        raise TextTooLarge(f"text of {characters} characters exceeds this key's limit of {caller.max_text_chars}")
    _check_language(book, voice, voices)
    # Every chapter makes at least one segment, and its title one more: a book
    # over the limit on that count alone is refused before it is planned.
    at_least = sum(1 + has_speakable(chapter.title) for chapter in book.chapters)
    if at_least > caller.max_segments:
        raise TextTooLarge(
            f"the text makes at least {at_least} segments; this key may submit at most {caller.max_segments} per job"
        )

    casting, cast_voices = _casting(request, book, voice, voices, models)
    job_lexicon = (Entry(e.word, e.say, e.case_sensitive) for e in request.lexicon)
    plan = make_plan(book, voice, models[voice.model], namespace=caller.id, title=title, author=author,
                     speed=request.speed, lexicon=merge(key_lexicon, job_lexicon), casting=casting,
                     cast_voices=cast_voices)
    if not plan.segments:
        raise EmptyText("the text is empty or has nothing speakable (no letters or digits)")
    if len(plan.segments) > caller.max_segments:
        raise TextTooLarge(
            f"the text makes {len(plan.segments)} segments; this key may submit at most {caller.max_segments} per job"
        )
    webhook_url = _webhook_url(request.webhook_url, settings)
    audio_format = request.format or settings.default_format
    keeps_pages = audio_format == "epub" and received.kind == "upload" and is_epub_zip(received.body)
    original = received.body if keeps_pages else b""
    return replace(Submission.of(plan, audio_format), webhook_url=webhook_url, original=original)


def submit(received: Received, caller: ApiKey) -> str:
    """Prepare and enqueue one submission; the new job's id. Runs in a planner process."""
    return submit_planned(received, caller)[0]


def submit_planned(received: Received, caller: ApiKey) -> tuple[str, bytes]:
    """``submit``, returning the plan's JSON document too (``/v1/audio/speech``
    streams the job's segments in the plan's order)."""
    from chorus.tasks import clients

    submission = prepare_here(received, caller)
    return enqueue(submission, caller, clients.jobs(), clients.storage()).id, submission.plan_document


def prepare_here(received: Received, caller: ApiKey) -> Submission:
    """``prepare`` with this planner process's own clients (made on first use) and settings."""
    from chorus.tasks import clients

    voices = clients.voices().by_id(caller.id)
    submission = prepare(received, caller, voices, clients.registry().models, get_settings(),
                         key_lexicon=clients.lexicons().entries(caller.id))
    if submission.webhook_url and clients.keys().webhook_secret(caller.id) is None:
        raise InputError("this API key has no webhook secret yet (it predates webhooks): "
                         "POST /v1/webhook-secret makes one and shows it")
    return submission


def enqueue(submission: Submission, caller: ApiKey, jobs: JobStore, storage: Storage) -> Job:
    """Record the job (refused at the key's concurrency limit), then launch it."""
    job = record(submission, caller, jobs)
    launch(job, submission, jobs, storage)
    return job


def record(submission: Submission, caller: ApiKey, jobs: JobStore, reserve: int = 0) -> Job:
    """Record the job, queued; refused (``TooManyJobs``) atomically unless the
    key's concurrency limit leaves room for it and ``reserve`` jobs more."""
    return jobs.create(
        voice=submission.voice, audio_format=submission.format, title=submission.title, author=submission.author,
        owner=caller.id, segments_total=submission.segments, chapter_titles=submission.chapter_titles,
        chapter_sizes=submission.chapter_sizes,
        max_active=caller.max_concurrent_jobs - reserve, webhook_url=submission.webhook_url,
    )


def launch(job: Job, submission: Submission, jobs: JobStore, storage: Storage) -> None:
    """Store the job's plan and send its split. A job whose plan or split could
    not be stored or sent is failed at once, saying so."""
    try:
        store_plan(job, submission, storage)
        celery_app.send_task(SPLIT_TASK, args=(job.id,), queue=JOBS_QUEUE, ignore_result=True)
    except Exception as exc:
        jobs.fail(job.id, f"could not enqueue: {type(exc).__name__}: {exc}")
        raise


def store_plan(job: Job, submission: Submission, storage: Storage) -> None:
    """Store the job's plan, the document every task of the job reads (and
    the uploaded EPUB whose pages a read-along EPUB keeps)."""
    if submission.original:
        storage.put_bytes(original_key(job.id), submission.original, "application/epub+zip")
    storage.put_bytes(plan_key(job.id), submission.plan_document, "application/json")


def submit_batch(books: list[tuple[str, Submission]], caller: ApiKey) -> tuple[str, list[str]]:
    """Record every book of a batch as a job, then launch them all: the batch
    is taken whole or not at all. Each record leaves room for the books after
    it, so a batch that does not fit the key's limit is refused at its first
    book; should a concurrent request take the room meanwhile, the jobs already
    recorded are taken back before anything was sent."""
    from chorus.tasks import clients

    jobs, storage = clients.jobs(), clients.storage()
    recorded: list[Job] = []
    try:
        for position, (_, submission) in enumerate(books):
            recorded.append(record(submission, caller, jobs, reserve=len(books) - position - 1))
    except TooManyJobs:
        for job in recorded:
            jobs.cancel(job.id)
            jobs.remove(job.id)
        raise TooManyJobs(
            f"a batch of {len(books)} books does not fit: this key may run {caller.max_concurrent_jobs} jobs at "
            f"once and has {jobs.active_jobs(caller.id)} running"
        ) from None
    for job, (_, submission) in zip(recorded, books, strict=True):
        launch(job, submission, jobs, storage)
    batch = clients.batches().create(
        caller.id, [BatchEntry(job.id, filename) for job, (filename, _) in zip(recorded, books, strict=True)]
    )
    return batch.id, [job.id for job in recorded]


def _request(received: Received) -> JobRequest:
    """The request's fields, validated by one schema whether they came as JSON or as a form."""
    try:
        if received.kind == "json":
            return JobRequest.model_validate_json(received.body)
        return JobRequest.model_validate({**received.fields, "text": ""})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InputError(f"invalid request: {where}: {first['msg']}") from None


def _webhook_url(url: str | None, settings: Settings) -> str:
    """The request's webhook URL once the operator's rules allow it; '' for none."""
    if not url:
        return ""
    check_webhook_url(url, Policy.of(settings))
    return url


def _read_json_text(text: str, max_chars: int) -> Book:
    if len(text) > max_chars:
        raise TextTooLarge(f"text of {len(text)} characters exceeds the limit of {max_chars}")
    if not has_speakable(text):
        raise EmptyText("the text is empty or has nothing speakable (no letters or digits)")
    return read_text(text)


def _casting(
    request: JobRequest, book: Book, narrator: Voice, voices: Mapping[str, Voice], models: Mapping[str, Model],
) -> tuple[Casting, dict[str, tuple[Voice, Model]]]:
    """Who reads what besides the narrator: the request's dialogue voice and
    character map, and the voices the text's inline tags name. Every one must
    be a voice the caller may use, that can read the book's script."""
    casting = Casting(narrator.id, request.dialogue_voice or None, dict(request.characters))
    named = casting.voices() - {narrator.id}
    for chapter in book.chapters:
        if has_tags(chapter.text):
            named |= tagged_voices(chapter.text) - {narrator.id}
    cast_voices = {}
    for voice_id in sorted(named):
        voice = _voice(voice_id, voices)
        _check_language(book, voice, voices)
        cast_voices[voice_id] = (voice, models[voice.model])
    return casting, cast_voices


def _voice(voice_id: str, voices: Mapping[str, Voice]) -> Voice:
    try:
        return voices[voice_id]
    except KeyError:
        raise UnknownVoice(f"unknown voice {voice_id!r}; available voices: {', '.join(voices)}") from None


def _check_language(book: Book, voice: Voice, voices: Mapping[str, Voice]) -> None:
    """A voice that cannot read the book's script would speak hours of nothing."""
    sample, size = [], 0
    for chapter in book.chapters:  # the opening of the book is enough to judge it
        sample.append(chapter.text)
        size += len(chapter.text)
        if size >= script.SAMPLE_CHARS:
            break
    found = script.dominant_script("\n".join(sample))
    if script.can_read(voice.language, found):
        return
    fitting = [v.id for v in voices.values() if script.can_read(v.language, found)]
    raise InputError(
        f"the text is mostly in {script.SCRIPT_NAMES.get(found or '', found)}, but voice {voice.id!r} speaks "
        f"{voice.language!r}; voices that fit: {', '.join(fitting) or 'none'}"
    )
