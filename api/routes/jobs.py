"""Jobs: submit a text, read its status, fetch its audio.

A submission is checked completely before anything is written or enqueued, so
a rejected request leaves no trace.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.deps import CallerDep, JobsDep, RegistryDep, SettingsDep, StorageDep, VoicesDep
from api.schemas import ChapterStatus, ErrorDocument, JobAccepted, JobRequest, JobStatus
from configs import Registry, Settings, get_settings
from tasks import books, language
from tasks import text as text_rules
from tasks.app import JOBS_QUEUE
from tasks.app import app as celery_app
from tasks.assemble import download_name
from tasks.audio import FORMATS
from tasks.errors import EmptyText, InputError, JobNotFound, JobNotReady, TextTooLarge, TooManyJobs, UnsupportedMedia
from tasks.jobs import Job, JobState, JobStore
from tasks.keys import ApiKey
from tasks.pipeline import INPUT_NAMES, split
from tasks.storage import input_key
from tasks.voices import VoiceBook
from tasks.watchdog import redrive

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_UPLOAD_FIELDS = {
    "file": {"type": "string", "format": "binary", "description": "The book: UTF-8 .txt, .md, or .epub"},
    "voice": {"type": "string"},
    "format": {"type": "string", "enum": list(FORMATS)},
    "title": {"type": "string"},
    "author": {"type": "string"},
}
_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": JobRequest.model_json_schema(ref_template="#/components/schemas/{model}")},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": _UPLOAD_FIELDS}},
        },
    }
}
_ERRORS = {code: {"model": ErrorDocument} for code in (413, 415, 422, 429)}


@dataclass
class Submission:
    """A request, read and parsed: the stored input, its kind, the book in it."""

    raw: bytes
    kind: str  # text, markdown or epub
    book: books.Book
    voice: str | None
    format: str | None
    title: str
    author: str

    @property
    def text(self) -> str:
        return "\n\n".join(c.text for c in self.book.chapters)


def _kind_of(raw: bytes, filename: str) -> str:
    name = filename.lower()
    if raw[:4] == b"PK\x03\x04" or name.endswith(".epub"):
        return "epub"
    if name.endswith((".md", ".markdown")):
        return "markdown"
    return "text"


async def _read_submission(request: Request, settings: Settings) -> Submission:
    """Parse a JSON body or a multipart upload (.txt, .md, .epub)."""
    declared = int(request.headers.get("content-length") or 0)
    # UTF-8 takes at most 4 bytes a character; refuse before reading a huge body.
    if declared > settings.max_text_chars * 4 + 64 * 1024:
        raise TextTooLarge(f"request body of {declared} bytes exceeds the limit of {settings.max_text_chars} characters")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        try:
            job = JobRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise InputError(f"invalid request: {where}: {first['msg']}") from None
        _check_text(job.text, settings.max_text_chars)
        return Submission(job.text.encode("utf-8"), "text", books.parse_text(job.text), job.voice, job.format, job.title, job.author)
    if content_type == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputError("a multipart submission needs the book as a file in the field 'file'")
        raw = await upload.read()
        filename = upload.filename or ""
        kind = _kind_of(raw, filename)
        if kind != "epub":
            try:
                body = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise UnsupportedMedia(f"the upload {filename!r} is not UTF-8 text") from None
            if "\x00" in body:
                raise UnsupportedMedia(f"the upload {filename!r} is binary, not text")
            _check_text(body, settings.max_text_chars)
        audio_format = form.get("format") or None
        if audio_format is not None and audio_format not in FORMATS:
            raise InputError(f"unknown format {audio_format!r}; choose one of: {', '.join(FORMATS)}")
        book = books.read_book(raw, INPUT_NAMES[kind])
        return Submission(
            raw=raw, kind=kind, book=book,
            voice=str(form.get("voice") or "") or None,
            format=str(audio_format) if audio_format else None,
            title=str(form.get("title") or book.title or Path(filename).stem),
            author=str(form.get("author") or book.author),
        )
    raise UnsupportedMedia(f"send application/json or multipart/form-data, not {content_type or 'no content type'!r}")


def _check_text(body: str, limit: int) -> None:
    if len(body) > limit:
        raise TextTooLarge(f"text of {len(body)} characters exceeds the limit of {limit}")
    if not text_rules.has_speakable(body):
        raise EmptyText("the text is empty or has nothing speakable (no letters or digits)")


def _validate(submission: Submission, caller: ApiKey, voices: VoiceBook, registry: Registry, jobs: JobStore) -> None:
    voice = voices.get(submission.voice or get_settings().default_voice, owner=caller.id)  # lists the voices
    text = submission.text
    _check_text(text, caller.max_text_chars)  # the key's own limit; EPUB text is known only now
    for name, value in (("title", submission.title), ("author", submission.author)):
        if len(value) > get_settings().max_title_chars:
            raise InputError(f"{name} longer than {get_settings().max_title_chars} characters")
    script = language.dominant_script(text)
    if not language.can_read(voice.language, script):
        fitting = [v.id for v in voices.all(owner=caller.id) if language.can_read(v.language, script)]
        raise InputError(
            f"the text is mostly in {language.SCRIPT_NAMES.get(script, script)}, but voice {voice.id!r} speaks "
            f"{voice.language!r}; voices that fit: {', '.join(fitting) or 'none'}"
        )
    max_chars = registry.models[voice.model].max_segment_chars
    segments = sum(len(text_rules.split(chapter.text, max_chars)) for chapter in submission.book.chapters)
    if segments > caller.max_segments:
        raise TextTooLarge(f"the text makes {segments} segments; this key may submit at most {caller.max_segments} per job")
    if jobs.active_jobs(caller.id) >= caller.max_concurrent_jobs:
        raise TooManyJobs(f"this key already has {caller.max_concurrent_jobs} jobs running; wait for one to finish")


def _status_url(request: Request, job_id: str) -> str:
    return str(request.url_for("get_job", job_id=job_id))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses=_ERRORS,
    openapi_extra=_SUBMIT_BODY,
    summary="Submit a text to be read as an audiobook",
)
async def create_job(
    request: Request,
    caller: CallerDep,
    settings: SettingsDep,
    registry: RegistryDep,
    voices: VoicesDep,
    jobs: JobsDep,
    storage: StorageDep,
) -> JSONResponse:
    submission = await _read_submission(request, settings)
    _validate(submission, caller, voices, registry, jobs)

    job = jobs.create(
        voice=submission.voice or settings.default_voice,
        audio_format=submission.format or settings.default_format,
        title=submission.title.strip(),
        author=submission.author.strip(),
        input_kind=submission.kind,
        owner=caller.id,
    )
    try:
        storage.put_bytes(input_key(job.id), submission.raw, "application/octet-stream")
        split.apply_async((job.id,), queue=JOBS_QUEUE)
    except Exception as exc:
        jobs.fail(job.id, f"could not enqueue: {type(exc).__name__}: {exc}")
        raise
    url = _status_url(request, job.id)
    return JSONResponse(
        JobAccepted(id=job.id, status_url=url).model_dump(), status_code=202, headers={"Location": url}
    )


def _load(jobs: JobStore, job_id: str, caller: ApiKey) -> Job:
    """The caller's job; anyone else's is as good as missing (404)."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(f"no job with id {job_id!r}")
    job = jobs.get(job_id)
    if job.owner != caller.id:
        raise JobNotFound(f"no job with id {job_id!r}")
    return job


@router.get("/{job_id}", response_model=JobStatus, responses={404: {"model": ErrorDocument}})
def get_job(job_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep) -> JobStatus:
    job = _load(jobs, job_id, caller)
    done = job.state == JobState.DONE
    ready = jobs.chapters_ready(job_id)
    chapters = [
        ChapterStatus(index=i, title=title, ready=i in ready, url=storage.presign(ready[i]["key"]) if i in ready else None)
        for i, title in enumerate(json.loads(job.chapter_titles))
    ]
    names = {"audio": download_name(job.title, job.format)}
    artefacts = {name: storage.presign(key, names.get(name)) for name, key in json.loads(job.artefacts).items()}
    return JobStatus(
        id=job.id,
        state=job.state,
        voice=job.voice,
        format=job.format,
        title=job.title,
        author=job.author,
        segments_total=job.segments_total,
        segments_done=job.segments_done,
        cache_hits=job.cache_hits,
        artefacts=artefacts,
        chapters=chapters,
        progress=job.progress,
        audio_seconds=job.audio_seconds,
        created_at=job.created_at,
        started_at=job.started_at or None,
        finished_at=job.finished_at or None,
        error=job.error or None,
        result_url=artefacts.get("audio") if done else None,
        manifest_url=artefacts.get("manifest") if done else None,
    )


@router.get(
    "/{job_id}/audio",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses={404: {"model": ErrorDocument}, 409: {"model": ErrorDocument}},
    summary="Redirect to the finished audiobook",
)
def get_audio(job_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep) -> RedirectResponse:
    job = _load(jobs, job_id, caller)
    if job.state != JobState.DONE:
        raise JobNotReady(f"job {job_id} is {job.state.value}, its audio is not ready")
    return RedirectResponse(storage.presign(job.result_key, download_name(job.title, job.format)), status_code=307)


@router.delete(
    "/{job_id}",
    response_model=JobStatus,
    responses={404: {"model": ErrorDocument}, 409: {"model": ErrorDocument}},
    summary="Cancel a job",
)
def cancel_job(job_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep) -> JobStatus:
    """Pending segments are revoked (by the chord's stamp), running ones stop at
    their next check of the job's state, and the job's objects are deleted; the
    workers go on serving other jobs."""
    job = _load(jobs, job_id, caller)
    if not jobs.cancel(job_id):
        raise JobNotReady(f"job {job_id} is already {job.state.value}")
    celery_app.control.revoke_by_stamped_headers({"chorus_job": job_id})
    storage.delete_keys(storage.list_keys(f"jobs/{job_id}/"))
    return get_job(job_id, caller, jobs, storage)


@router.post(
    "/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={404: {"model": ErrorDocument}, 409: {"model": ErrorDocument}},
    summary="Re-drive a failed or stuck job; only missing segments are synthesised",
)
def resume_job(job_id: str, request: Request, caller: CallerDep, jobs: JobsDep) -> JobAccepted:
    job = _load(jobs, job_id, caller)
    stuck = not job.state.final and job.deadline_at and time.time() > job.deadline_at
    if job.state != JobState.FAILED and not stuck:
        raise JobNotReady(f"job {job_id} is {job.state.value}; only failed or stuck jobs can be resumed")
    redrive(job_id)
    return JobAccepted(id=job_id, status_url=_status_url(request, job_id))
