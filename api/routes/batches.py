"""Batches: several books in one request, one job per book, polled together.

Every book of a batch is read and planned (in the planner processes, side by
side) before any is recorded, and the batch is recorded whole or not at all
(``api/submission.py``: ``submit_batch``): a batch with one unreadable book,
or one that does not fit the key's concurrent-job limit, is refused and
enqueues nothing, naming the book.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from chorus.api.deps import AsyncRedisDep, CallerDep, JobsDep, PlannerDep, SettingsDep, StorageDep
from chorus.api.routes.jobs import UPLOAD_FIELDS, UPLOAD_SCHEMA
from chorus.api.schemas import BatchAccepted, BatchJob, BatchStatus, ErrorDocument, JobAccepted
from chorus.api.submission import Received, prepare_here, submit_batch
from chorus.tasks import clients
from chorus.tasks.errors import BatchNotFound, ChorusError, InputError, JobNotFound, UnsupportedMedia
from chorus.tasks.state.status import status_document

router = APIRouter(prefix="/v1/batches", tags=["batches"])

# A batch's books share every field of a single upload but the title, which
# each book takes from its own metadata or file name.
SHARED_FIELDS = tuple(name for name in UPLOAD_FIELDS if name != "title")
_BATCH_ID = re.compile(r"^[0-9a-f]{32}$")
_SUBMIT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {
                "file": {"type": "array", "items": UPLOAD_SCHEMA["file"],
                         "description": "The books, one `file` field each"},
                **{name: UPLOAD_SCHEMA[name] for name in SHARED_FIELDS if name in UPLOAD_SCHEMA},
            },
        }}},
    }
}


async def _receive(request: Request, max_books: int) -> list[Received]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "multipart/form-data":
        raise UnsupportedMedia(f"send the books as multipart/form-data, not {content_type or 'no content type'!r}")
    async with request.form(max_files=max_books, max_fields=len(SHARED_FIELDS)) as form:
        uploads = [upload for upload in form.getlist("file") if isinstance(upload, UploadFile)]
        if not uploads:
            raise InputError("a batch needs its books as files, each in a field named 'file'")
        fields = {name: value for name in SHARED_FIELDS if isinstance(value := form.get(name), str) and value}
        return [Received("upload", await upload.read(), upload.filename or "", fields) for upload in uploads]


async def _prepare(planner: Any, received: Received, caller: Any, number: int) -> Any:
    try:
        return await planner.run(prepare_here, received, caller, owner=caller.id, size=len(received.body))
    except ChorusError as exc:  # the same error, saying which book
        exc.args = (f"book {number} ({received.filename or 'no name'}): {exc}",)
        raise


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchAccepted,
    responses={code: {"model": ErrorDocument} for code in (413, 415, 422, 429)},
    openapi_extra=_SUBMIT_BODY,
    summary="Submit several books at once: one job per book, and a batch to poll them together",
)
async def create_batch(request: Request, caller: CallerDep, planner: PlannerDep, settings: SettingsDep) -> JSONResponse:
    books = await _receive(request, settings.max_batch_books)
    if len(books) > settings.max_batch_books:
        raise InputError(f"a batch holds at most {settings.max_batch_books} books, not {len(books)}")
    submissions = await asyncio.gather(*(_prepare(planner, book, caller, n) for n, book in enumerate(books, 1)))
    named = [(book.filename, submission) for book, submission in zip(books, submissions, strict=True)]
    batch_id, job_ids = await planner.run(submit_batch, named, caller, owner=caller.id)
    url = str(request.url_for("get_batch", batch_id=batch_id))
    accepted = BatchAccepted(id=batch_id, status_url=url, jobs=[
        JobAccepted(id=job_id, status_url=str(request.url_for("get_job", job_id=job_id))) for job_id in job_ids
    ])
    return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": url})


@router.get("/{batch_id}", response_model=BatchStatus, responses={404: {"model": ErrorDocument}})
async def get_batch(
    batch_id: str, caller: CallerDep, jobs: JobsDep, storage: StorageDep, client: AsyncRedisDep,
) -> BatchStatus:
    """Every job of the batch, in the order of the request; a job deleted
    since (or expired) shows as ``gone``."""
    if not _BATCH_ID.match(batch_id):
        raise BatchNotFound(f"no batch with id {batch_id!r}")
    batch = await clients.batches().get_async(client, batch_id, caller.id)
    async def job_or_none(job_id: str) -> Any:
        try:
            return await jobs.get_async(client, job_id)
        except JobNotFound:
            return None

    # One round trip per job, all in flight together rather than one after another.
    found = list(zip(batch.jobs, await asyncio.gather(*(job_or_none(entry.id) for entry in batch.jobs)), strict=True))
    documents = await run_in_threadpool(
        lambda: [status_document(job, storage) if job is not None else None for _, job in found]
    )
    members = [BatchJob(id=entry.id, filename=entry.filename, status=document)
               for (entry, _), document in zip(found, documents, strict=True)]
    counts: dict[str, int] = {}
    for member in members:
        state = member.status.state.value if member.status else "gone"
        counts[state] = counts.get(state, 0) + 1
    finished = all(member.status is None or member.status.state.final for member in members)
    return BatchStatus(id=batch.id, created_at=batch.created_at, finished=finished, counts=counts, jobs=members)
