"""A job's status document: what ``GET /v1/jobs/{id}`` answers, and what a
job's webhook carries when it ends. One builder for both, here, so the API
and the delivery task (which never imports the API) send the same JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from chorus.tasks.state.jobs import Job, JobState
from chorus.tasks.state.storage import Storage, download_name


class ChapterStatus(BaseModel):
    index: int
    title: str
    ready: bool = Field(description="Its file exists: all its segments are done")
    url: str | None = Field(description="Presigned URL of the chapter's file once ready")
    segments_total: int = Field(0, description="Its segments (0 for jobs made before chapters counted them)")
    segments_done: int = Field(0, description="Its segments done so far, cache hits included")


class WebhookStatus(BaseModel):
    url: str
    state: Literal["waiting", "pending", "delivered", "failed"] = Field(
        description="waiting: the job has not ended; pending: being delivered (attempts so far below); "
        "delivered: a receiver answered 2xx; failed: given up after the last attempt, or the URL was refused",
    )
    delivery: str | None = Field(
        description="Id of the delivery of this ending (X-Chorus-Delivery): the same on every attempt"
    )
    attempts: int = Field(description="Attempts made for this ending, this one included while it runs")
    last_status_code: int | None = Field(description="HTTP status of the last answer; null if none came")
    last_error: str | None = Field(description="Why the last attempt failed")
    last_attempt_at: str | None = Field(description="When the last attempt began (in a delivered body: this one)")
    next_attempt_at: str | None = Field(description="When the next attempt is due, while pending")
    delivered_at: str | None


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
    webhook: WebhookStatus | None = Field(
        None, description="The job's webhook and the delivery of its latest ending; null without a webhook_url"
    )


def _webhook(job: Job) -> WebhookStatus | None:
    if not job.webhook_url:
        return None
    next_at = datetime.fromtimestamp(job.webhook_next_at, UTC).isoformat(timespec="milliseconds")
    return WebhookStatus(
        url=job.webhook_url,
        state=job.webhook_state or "waiting",  # type: ignore[arg-type]  # the scripts write only these
        delivery=job.webhook_delivery or None,
        attempts=job.webhook_attempts,
        last_status_code=job.webhook_code or None,
        last_error=job.webhook_error or None,
        last_attempt_at=job.webhook_attempted_at or None,
        next_attempt_at=next_at if job.webhook_state == "pending" and job.webhook_next_at else None,
        delivered_at=job.webhook_delivered_at or None,
    )


def status_document(job: Job, storage: Storage) -> JobStatus:
    """The job's status, its artefacts' URLs presigned (``Storage.presign``)."""
    done = job.state == JobState.DONE
    sizes = json.loads(job.chapter_sizes)
    chapters = [
        ChapterStatus(index=i, title=title, ready=i in job.chapters,
                      url=storage.presign(job.chapters[i]["key"]) if i in job.chapters else None,
                      segments_total=sizes[i] if i < len(sizes) else 0,
                      segments_done=sizes[i] if done and i < len(sizes) else job.chapters_done.get(i, 0))
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
        suspect_segments=job.suspect_segments,
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
        webhook=_webhook(job),
    )
