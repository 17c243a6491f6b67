"""The FastAPI application: ``uvicorn api.main:app``. OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.routes import health, jobs, voices
from tasks.errors import ChorusError, JobNotFound, JobNotReady, StorageError, TextTooLarge, UnsupportedMedia, InputError

# Most specific first: the first class an error is an instance of decides.
_STATUS = [
    (TextTooLarge, 413),
    (UnsupportedMedia, 415),
    (InputError, 422),
    (JobNotFound, 404),
    (JobNotReady, 409),
    (StorageError, 503),
]

app = FastAPI(
    title="Chorus",
    version="0.1.0",
    summary="Long text in, audiobook out.",
    description="Submit a text, poll its job, download the audiobook. Work runs on Celery workers; audio lands in S3.",
)
app.include_router(jobs.router)
app.include_router(voices.router)
app.include_router(health.router)


@app.exception_handler(ChorusError)
async def chorus_error(_: Request, exc: ChorusError) -> JSONResponse:
    code = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    return JSONResponse({"detail": str(exc)}, status_code=code)
