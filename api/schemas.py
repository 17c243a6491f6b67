"""Request and response documents."""

from __future__ import annotations

from pydantic import BaseModel, Field

from configs.settings import AudioFormat
from tasks.state.status import ChapterStatus, JobStatus, WebhookStatus  # noqa: F401  (beside their builder)


class JobRequest(BaseModel):
    text: str = Field(description="The text to read, UTF-8. Paragraphs are separated by blank lines.")
    voice: str | None = Field(None, description="A voice id from GET /v1/voices; the default voice if omitted.")
    format: AudioFormat | None = Field(None, description="Audiobook format; the configured default if omitted.")
    title: str = Field("", description="Book title (tags, file name); from the book's metadata if omitted.")
    author: str = Field("", description="Author (tags); from the book's metadata if omitted.")
    webhook_url: str | None = Field(
        None, description="Where to POST the job's status document when it ends (done, failed or cancelled), "
        "signed with the API key's webhook secret (X-Chorus-Signature); http or https, on a host the operator allows")



class JobAccepted(BaseModel):
    id: str
    status_url: str


class VoiceInfo(BaseModel):
    id: str
    engine: str
    model: str
    language: str
    sample_rate: int
    name: str | None = Field(None, description="Display name of a voice registered from reference audio")


class Health(BaseModel):
    status: str
    redis: str
    s3: str


class ErrorDocument(BaseModel):
    detail: str
