"""Jobs: submit a text, read its status, fetch its audio.

A submission is read within the body limit (``api/limits.py``); a planner
process (``api/planner.py``) then reads, checks and plans it, and only then
records and enqueues it (``api/submission.py``): a rejected request leaves no
trace. Nothing here blocks the event loop: status polls and authentication
await Redis on an asyncio client, and the rare calls that are sync (cancel,
resume, audio) run in worker threads.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from chorus.api.deps import (
    AsyncRedisDep,
    CallerDep,
    JobsDep,
    PlannerDep,
    StorageDep,
)
from chorus.api.schemas import ErrorDocument, JobAccepted, JobList, JobRequest, JobStatus
from chorus.api.submission import Received, submit
from chorus.configs.settings import AudioFormat
from chorus.tasks.cancellation import cancel_job
from chorus.tasks.errors import (
    InputError,
    JobConflict,
    JobNotFound,
    JobNotReady,
    UnsupportedMedia,
)
from chorus.tasks.state.jobs import Job, JobState, JobStore
from chorus.tasks.state.keys import ApiKey
from chorus.tasks.state.status import status_document
from chorus.tasks.state.storage import download_name
from chorus.tasks.watchdog import redrive, remove_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

UPLOAD_FIELDS = ("voice", "format", "title", "author", "webhook_url", "speed", "lexicon", "dialogue_voice", "characters")

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
UPLOAD_SCHEMA = {
    "file": {"type": "string", "format": "binary",
             "description": "The book: .txt (UTF-8, UTF-16, Windows-1252, GB18030, Big5, ...), .md, .epub, or .pdf (with a text layer)"},
    "voice": {"type": "string"},
    "format": {"type": "string", "enum": list(get_args(AudioFormat))},
    "title": {"type": "string"},
    "author": {"type": "string"},
    "webhook_url": {"type": "string", "description": "Where to POST the job's status document when it ends"},
    "speed": {"type": "number", "minimum": 0.5, "maximum": 2.0, "default": 1.0},
    "lexicon": {"type": "string", "description": "Pronunciation entries as JSON: a list of entries or {word: respelling}"},
    "dialogue_voice": {"type": "string", "description": "A voice for quoted speech"},
    "characters": {"type": "string", "description": "Speaker name -> voice, as a JSON object"},
}
_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": JobRequest.model_json_schema(ref_template="#/components/schemas/{model}")},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": UPLOAD_SCHEMA}},
        },
    }
}
_ERRORS = {code: {"model": ErrorDocument} for code in (413, 415, 422, 429)}


async def _receive(request: Request) -> Received:
    """The body of a JSON or multipart submission, read within the body limit."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        return Received("json", await request.body())
    if content_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=len(UPLOAD_FIELDS)) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InputError("a multipart submission needs the book as a file in the field 'file'")
            fields = {name: value for name in UPLOAD_FIELDS if isinstance(value := form.get(name), str) and value}
            return Received("upload", await upload.read(), upload.filename or "", fields)
    raise UnsupportedMedia(f"send application/json or multipart/form-data, not {content_type or 'no content type'!r}")


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
async def create_job(request: Request, caller: CallerDep, planner: PlannerDep) -> JSONResponse:
    received = await _receive(request)
    size = len(received.body)
    small = received.kind == "json" and planner.is_small(size)
    job_id = await planner.run(submit, received, caller, owner=caller.id, size=size, small=small)
    url = _status_url(request, job_id)
    return JSONResponse(JobAccepted(id=job_id, status_url=url).model_dump(), status_code=202, headers={"Location": url})


def _load(jobs: JobStore, job_id: str, caller: ApiKey) -> Job:
    """The caller's job; anyone else's is as good as missing (404)."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(f"no job with id {job_id!r}")
    return _owned(jobs.get(job_id), caller)


def _owned(job: Job, caller: ApiKey) -> Job:
    if job.owner != caller.id:
        raise JobNotFound(f"no job with id {job.id!r}")
    return job


def _urls_of(job: Job) -> list[tuple[str, str | None]]:
    """(S3 key, download name) of every object the status document links."""
    names = {"audio": download_name(job.title, job.format)}
    return [(chapter["key"], None) for chapter in job.chapters.values()] + [
        (key, names.get(name)) for name, key in json.loads(job.artefacts).items()
    ]


@router.get("", response_model=JobList, responses={422: {"model": ErrorDocument}},
            summary="List the key's jobs, newest first")
async def list_jobs(
    caller: CallerDep, jobs: JobsDep, storage: StorageDep, client: AsyncRedisDep,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page")] = 20,
    state: Annotated[JobState | None, Query(description="Only jobs in this state")] = None,
    cursor: Annotated[str | None, Query(max_length=40, description="next_cursor of the page before")] = None,
) -> JobList:
    before = None
    if cursor is not None:
        try:
            before = float(cursor)
        except ValueError:
            raise InputError(f"invalid cursor {cursor!r}: pass next_cursor as it came") from None
    found, after = await jobs.list_async(client, caller.id, limit, state, before)
    documents = await run_in_threadpool(lambda: [status_document(job, storage) for job in found])
    return JobList(jobs=documents, next_cursor=None if after is None else repr(after))


@router.get("/{job_id}", response_model=JobStatus, responses={404: {"model": ErrorDocument}})
async def get_job(job_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep, client: AsyncRedisDep) -> JobStatus:
    """What clients poll: one awaited Redis round trip; the URLs of its
    artefacts are signed in a thread the first time, then reused."""
    if not _JOB_ID.match(job_id):
        raise JobNotFound(f"no job with id {job_id!r}")
    job = _owned(await jobs.get_async(client, job_id), caller)
    if any(storage.presigned(key, name) is None for key, name in _urls_of(job)):
        await run_in_threadpool(lambda: [storage.presign(key, name) for key, name in _urls_of(job)])
    return status_document(job, storage)


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


@router.get(
    "/{job_id}/manifest",
    responses={200: {"content": {"application/json": {}}}, 404: {"model": ErrorDocument},
               409: {"model": ErrorDocument}},
    summary="The finished job's manifest, from this origin (the listening page reads along with it)",
)
def get_manifest(job_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep) -> Response:
    job = _load(jobs, job_id, caller)
    if job.state != JobState.DONE:
        raise JobNotReady(f"job {job_id} is {job.state.value}, its manifest is not ready")
    return Response(storage.get_bytes(job.manifest_key), media_type="application/json")


@router.delete(
    "/{job_id}",
    response_model=JobStatus,
    responses={
        200: {"description": "The job was unfinished: it is cancelled, and its objects are deleted"},
        204: {"description": "The job was finished (done, failed or cancelled): its objects and its record "
                             "are deleted, and GET answers 404 from now on"},
        404: {"model": ErrorDocument},
        409: {"model": ErrorDocument, "description": "The job was resumed while it was being deleted"},
    },
    summary="Cancel an unfinished job, or delete a finished one",
)
def delete_job(job_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep) -> JobStatus | Response:
    """An unfinished job is cancelled: pending segments are revoked (by the
    chord's stamp), running ones stop at their next check of the job's state,
    its objects are deleted (a render in flight takes back its own upload), and
    the workers go on serving other jobs. A finished job is deleted: its
    objects, then its record."""
    _load(jobs, job_id, caller)  # the caller's own, or 404
    if cancel_job(job_id):
        return status_document(jobs.get(job_id), storage)
    remove_job(job_id)
    if jobs.state(job_id) is not None:
        raise JobConflict(f"job {job_id} was resumed while it was being deleted")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{job_id}/resume",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    responses={404: {"model": ErrorDocument}, 409: {"model": ErrorDocument}},
    summary="Re-drive a failed or stuck job; only missing segments are synthesised",
)
def resume_job(job_id: str, request: Request, caller: CallerDep, jobs: JobsDep) -> JobAccepted:
    job = _load(jobs, job_id, caller)
    if not redrive(job_id):
        raise JobConflict(
            f"job {job_id} is {jobs.state(job_id) or 'gone'}; only a failed job, or one past its deadline, can be resumed"
        )
    return JobAccepted(id=job.id, status_url=_status_url(request, job_id))
