"""The FastAPI application: ``uvicorn chorus.api.main:app``. OpenAPI at /docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError
from starlette.concurrency import run_in_threadpool

from chorus.api.deps import authenticate
from chorus.api.limits import BodyLimit
from chorus.api.planner import Planner
from chorus.api.routes import batches, captions, health, jobs, lexicon, metrics, page, speech, voices, webhooks
from chorus.api.schemas import ErrorDocument
from chorus.configs import get_settings
from chorus.tasks import clients
from chorus.tasks.errors import (
    ChorusError,
    InputError,
    JobConflict,
    JobNotFound,
    JobNotReady,
    NotAuthenticated,
    SpeechFailed,
    StorageError,
    TextTooLarge,
    TooManyJobs,
    UnsupportedMedia,
    VoiceInUse,
    VoiceNotFound,
    WordNotFound,
)

log = logging.getLogger(__name__)

SMALL_BODY_BYTES = 64 * 1024
RETRY_AFTER_S = 30  # a client over its concurrent-job limit tries again after this
OUTAGE_RETRY_AFTER_S = 5  # a client that met a service away (503) tries again after this

# Most specific first: the first class an error is an instance of decides.
_STATUS = [
    (TextTooLarge, 413),
    (UnsupportedMedia, 415),
    (NotAuthenticated, 401),
    (TooManyJobs, 429),
    (JobNotFound, 404),
    (JobNotReady, 409),
    (JobConflict, 409),
    (VoiceInUse, 409),
    (VoiceNotFound, 404),
    (WordNotFound, 404),
    (StorageError, 503),
    (SpeechFailed, 502),
    (InputError, 422),
]


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The shared clients, made now rather than by the first requests.
    for make in (get_settings, clients.registry, clients.jobs, clients.storage, clients.voices, clients.fleet, clients.keys):
        await run_in_threadpool(make)
    # A fresh deployment has no bucket yet; /healthz reports it if this fails.
    try:
        await run_in_threadpool(clients.storage().ensure_bucket)
    except StorageError as exc:
        log.warning("could not create the bucket: %s", exc)
    app.state.planner = Planner(get_settings().api_planners)
    await run_in_threadpool(app.state.planner.start)
    try:
        yield
    finally:
        app.state.planner.close()
        await clients.async_redis().aclose()


def body_limit(method: str, path: str) -> int:
    """The largest body each route reads; everything else gets a small one."""
    if method == "POST" and path in ("/v1/jobs", "/v1/batches"):
        return get_settings().max_request_bytes
    if method == "POST" and path == "/v1/voices":
        return voices.UPLOAD_MAX_BYTES
    if method == "PUT" and path == "/v1/lexicon":
        return lexicon.REPLACE_MAX_BYTES
    # JSON may escape a character in 12 bytes (a surrogate pair)
    if method == "POST" and (path == "/v1/audio/speech" or path in captions.PATHS):
        return max(SMALL_BODY_BYTES, get_settings().speech_max_chars * 12 + 4096)
    return SMALL_BODY_BYTES


app = FastAPI(
    lifespan=lifespan,
    title="Chorus",
    version="0.1.0",
    summary="Long text in, audiobook out.",
    description="Submit a text, poll its job, download the audiobook. Work runs on Celery workers; audio lands in S3.",
)
_UNAUTHENTICATED = {
    400: {"model": ErrorDocument, "description": "A body that cannot be parsed (malformed multipart)"},
    401: {"model": ErrorDocument, "description": "No API key, or an unknown one"},
}
app.include_router(jobs.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(voices.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(lexicon.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(batches.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(speech.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(captions.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(webhooks.router, dependencies=[Depends(authenticate)], responses=_UNAUTHENTICATED)
app.include_router(health.router)
app.include_router(page.router)  # the listening page at /, outside the schema
app.include_router(metrics.router)  # Prometheus, for operators (its own token), outside the schema
app.add_middleware(BodyLimit, limit_for=body_limit)


@app.exception_handler(ChorusError)
async def chorus_error(_: Request, exc: ChorusError) -> JSONResponse:
    code = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    headers = {"WWW-Authenticate": "Bearer"} if code == 401 else {}
    if code == 429:
        headers["Retry-After"] = str(RETRY_AFTER_S)
    if code == 503:
        headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_S)
    return JSONResponse({"detail": str(exc)}, status_code=code, headers=headers)


@app.exception_handler(redis.exceptions.ConnectionError)  # BusyLoadingError too: Redis reading its AOF
@app.exception_handler(redis.exceptions.TimeoutError)
@app.exception_handler(OperationalError)  # the broker refused a message (Celery's send)
async def service_away(_: Request, exc: Exception) -> JSONResponse:
    """Redis (job state, keys, the broker) is away for now: 503 and when to
    try again, never a 500. The clients reconnect by themselves when it is back."""
    log.warning("a service is away: %s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": "a service Chorus depends on is unavailable for now; try again shortly"},
                        status_code=503, headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)})


@app.exception_handler(RequestValidationError)
async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """One error shape everywhere: {"detail": "<where>: <what>"}, as for ChorusError."""
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return JSONResponse({"detail": f"invalid request: {where}: {first.get('msg', '')}"}, status_code=422)
