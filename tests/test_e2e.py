"""A whole job with the real Piper voice: HTTP in, audiobook in S3 out."""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import pytest
import redis
import soundfile as sf

from chorus.tasks.audio.loudness import SegmentLevel
from chorus.tasks.state.cache import SegmentCache
from chorus.tasks.state.storage import plan_key
from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack

STORY = """The Clockmaker's Apprentice

Mr. Hale opened the shop at seven. Dr. Prentice was already waiting outside, holding a clock that had stopped at noon.

"Can you mend it?" she asked. He turned it over twice, listened, and smiled.

By evening the clock was ticking again, and the apprentice wrote the repair in the ledger."""


def test_piper_job_end_to_end(api: httpx.Client, storage, jobs) -> None:
    job_id = submit(api, STORY, voice="joe", format="flac", title="The Clockmaker")
    status = wait_for(api, job_id)
    assert status["state"] == "done", status["error"]
    assert status["segments_done"] == status["segments_total"] >= 6
    assert status["progress"] == 1.0
    assert status["started_at"] and status["finished_at"]

    audio = httpx.get(status["result_url"], timeout=60)
    assert audio.status_code == 200
    samples, rate = sf.read(io.BytesIO(audio.content))
    assert rate == 22050
    manifest = httpx.get(status["manifest_url"], timeout=60).json()

    # The decoded audio is as long as the manifest says, and as the status says.
    assert abs(len(samples) / rate - manifest["duration_seconds"]) < 0.01
    assert abs(status["audio_seconds"] - manifest["duration_seconds"]) < 0.01
    # Segments come in text order, each starting where the previous one ended
    # plus a pause, and the last one ends the book.
    segments = manifest["segments"]
    assert [s["index"] for s in segments] == list(range(len(segments)))
    positions = [STORY.index(s["text"]) for s in segments]
    assert positions == sorted(positions)
    for before, after in zip(segments, segments[1:]):
        assert before["start"] < before["end"] < after["start"]
    assert segments[-1]["end"] == pytest.approx(manifest["duration_seconds"], abs=0.01)
    # Speech, not silence, in every segment.
    for segment in segments:
        part = samples[int(segment["start"] * rate) : int(segment["end"] * rate)]
        assert abs(part).max() > 0.05, segment

    # Segment audio lives in the content-addressed cache, not under the job;
    # the job keeps its plan (the book, read once by the API), its artefacts
    # and its one chapter's file (with its render summary), which the book joins.
    assert sorted(storage.list_keys(f"jobs/{job_id}/")) == [
        f"jobs/{job_id}/{name}" for name in
        ("audiobook.flac", "chapters/001.flac", "chapters/001.flac.json", "manifest.json", "plan.json",
         "subtitles.srt", "subtitles.vtt", "words.json")
    ]
    # Memory was released once for this job by the one Piper worker.
    releases = _eventually(lambda: jobs.releases(job_id))
    assert list(releases.values()) == [1] and next(iter(releases)).startswith("piper-joe-1@")

    redirect = api.get(f"/v1/jobs/{job_id}/audio")
    assert redirect.status_code == 307
    assert httpx.get(redirect.headers["location"], timeout=60).content == audio.content


def test_cli_submit_uploads_waits_and_downloads(stack: dict[str, str], tmp_path) -> None:
    book = tmp_path / "note.txt"
    book.write_text("A short note. It has two sentences.\n", encoding="utf-8")
    output = tmp_path / "out" / "note.mp3"
    env = {**stack, "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "chorus.cli", "submit", str(book), "--voice", "joe", "-o", str(output)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    samples, rate = sf.read(output)
    assert rate == 22050 and len(samples) / rate > 1.0
    assert output.with_suffix(".json").exists()


def _eventually(read, timeout: float = 10):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.1)
    return read()


LEVELS_STORY = """The ferryman counted seven lanterns on the far quay before the fog rolled in.

"Wait for the tide," said the harbourmaster. The ferryman waited, and the lanterns went out one by one."""


def test_assembly_reads_stored_levels_and_measures_segments_without_one(api: httpx.Client, settings, storage) -> None:
    """Each segment's loudness level is stored with it when it is spoken, and
    assembly takes the book's gain from those levels; a segment cached without
    one (before levels were kept) is measured from its audio, to the same result."""
    client = redis.Redis.from_url(settings.redis_url)
    first = wait_for(api, submit(api, LEVELS_STORY, voice="joe", format="wav"))
    assert first["state"] == "done", first["error"]
    keys = [s["cache_key"] for s in storage.get_json(plan_key(first["id"]))["segments"]]
    stored = client.hmget(SegmentCache.LEVELS, keys)
    assert all(stored), "every spoken segment has a stored level"
    levels = [SegmentLevel.from_bytes(level) for level in stored]
    assert all(level.sample_rate == 22050 and level.blocks.size and 0 < level.true_peak < 1.5 for level in levels)

    client.hdel(SegmentCache.LEVELS, *keys)  # as if cached before levels were kept
    again = wait_for(api, submit(api, LEVELS_STORY, voice="joe", format="wav"))
    assert again["state"] == "done" and again["cache_hits"] == len(keys)
    measured, kept = (httpx.get(s["manifest_url"], timeout=60).json() for s in (again, first))
    assert measured["loudness_lufs"] == pytest.approx(kept["loudness_lufs"], abs=0.05)
    assert measured["true_peak_dbfs"] == pytest.approx(kept["true_peak_dbfs"], abs=0.05)
    assert measured["duration_seconds"] == kept["duration_seconds"]
