"""Request and response documents."""

from __future__ import annotations

from pydantic import BaseModel, Field

from configs.settings import AudioFormat
from tasks.state.jobs import JobState


class JobRequest(BaseModel):
    text: str = Field(description="The text to read, UTF-8. Paragraphs are separated by blank lines.")
    voice: str | None = Field(None, description="A voice id from GET /v1/voices; the default voice if omitted.")
    format: AudioFormat | None = Field(None, description="Audiobook format; the configured default if omitted.")
    title: str = Field("", description="Book title (tags, file name); from the book's metadata if omitted.")
    author: str = Field("", description="Author (tags); from the book's metadata if omitted.")


class JobAccepted(BaseModel):
    id: str
    status_url: str


class ChapterStatus(BaseModel):
    index: int
    title: str
    ready: bool = Field(description="Its file exists: all its segments are done")
    url: str | None = Field(description="Presigned URL of the chapter's file once ready")


class JobStatus(BaseModel):
    id: str
    state: JobState
    voice: str
    format: str
    title: str
    author: str
    segments_total: int
    segments_done: int
    cache_hits: int = Field(description="Segments taken from the segment cache instead of synthesised")
    suspect_segments: int = Field(
        0, description="Once done: segments whose audio still failed the take check (length for its text, "
        "silence, clipping) after retries; the manifest marks each with the reason",
    )
    progress: float = Field(description="segments_done / segments_total, 1.0 when done")
    audio_seconds: float
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    result_url: str | None = Field(description="Presigned, time-limited URL of the audiobook once done")
    manifest_url: str | None = Field(description="Presigned, time-limited URL of the JSON manifest once done")
    artefacts: dict[str, str] = Field(description="Every finished artefact (audio, manifest, srt, vtt) by name: presigned URLs")
    chapters: list[ChapterStatus] = Field(description="Chapters in order; with 2+ chapters each gets its own file as soon as it is done")


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
