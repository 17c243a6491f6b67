"""A failing segment fails its job with the reason; nothing stays running."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack


def test_failing_segment_fails_the_job_with_its_index(api: httpx.Client) -> None:
    text = "One fine line. Two fine lines. Then kaboom goes the third. Four is fine."
    status = wait_for(api, submit(api, text, voice="tone"))
    assert status["state"] == "failed"
    assert "segment 2" in status["error"] and "kaboom" in status["error"]
    assert status["finished_at"]
    assert status["result_url"] is None


def test_other_jobs_still_finish_after_a_failure(api: httpx.Client) -> None:
    failing = submit(api, "Kaboom at once. " * 3, voice="tone")
    healthy = submit(api, "All is well. Nothing explodes here.", voice="tone", format="wav")
    assert wait_for(api, failing)["state"] == "failed"
    assert wait_for(api, healthy)["state"] == "done"


def test_stand_in_voice_job_with_many_segments(api: httpx.Client, storage) -> None:
    paragraphs = [" ".join(f"Sentence {p}.{s} of the book." for s in range(10)) for p in range(6)]
    status = wait_for(api, submit(api, "\n\n".join(paragraphs), voice="tone", format="wav"))
    assert status["state"] == "done", status["error"]
    assert status["segments_total"] == 60
    manifest = httpx.get(status["manifest_url"]).json()
    assert [s["text"] for s in manifest["segments"]] == [
        f"Sentence {p}.{s} of the book." for p in range(6) for s in range(10)
    ]
