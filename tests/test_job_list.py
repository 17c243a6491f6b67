"""GET /v1/jobs on the real stack: a key's jobs, newest first, paged, filtered
by state, nobody else's; a page's work is bounded however rare its filter."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from redis.asyncio import Redis as AsyncRedis

from chorus.tasks.state import jobs as job_module
from chorus.tasks.state.jobs import JobState
from chorus.tasks.state.keys import KeyStore
from tests.conftest import wait_for

pytestmark = pytest.mark.timeout(120)


def key_client(stack: dict[str, str], key: str) -> httpx.Client:
    return httpx.Client(base_url=stack["CHORUS_API_URL"], timeout=30, headers={"Authorization": f"Bearer {key}"})


def all_pages(client: httpx.Client, **params: str | int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        response = client.get("/v1/jobs", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([job["id"] for job in page["jobs"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


def test_a_key_lists_its_own_jobs_newest_first(stack, jobs) -> None:
    key, _ = KeyStore(jobs.redis).create("lister", 10_000, 100, 5)
    with key_client(stack, key) as client:
        made = []
        for n in range(4):
            response = client.post("/v1/jobs", json={"text": f"Book number {n}.", "voice": "tone", "format": "wav"})
            assert response.status_code == 202
            made.append(response.json()["id"])
            wait_for(client, made[-1])
        slow = client.post("/v1/jobs", json={"text": "A dawdle. And dawdle again.", "voice": "tone"}).json()["id"]
        assert client.delete(f"/v1/jobs/{slow}").status_code == 200
        made.append(slow)

        listed = client.get("/v1/jobs").json()
        assert [job["id"] for job in listed["jobs"]] == made[::-1] and listed["next_cursor"] is None
        assert listed["jobs"][0]["state"] == "cancelled" and listed["jobs"][1]["result_url"]

        assert all_pages(client, limit=2) == [made[::-1][0:2], made[::-1][2:4], made[::-1][4:5]]
        assert all_pages(client, state="cancelled") == [[slow]]
        assert all_pages(client, state="done") == [made[3::-1]]

        # A deleted job leaves the list.
        assert client.delete(f"/v1/jobs/{made[0]}").status_code == 204
        assert [job["id"] for job in client.get("/v1/jobs").json()["jobs"]] == made[:0:-1]

        assert client.get("/v1/jobs", params={"cursor": "tomorrow"}).status_code == 422
        assert client.get("/v1/jobs", params={"state": "asleep"}).status_code == 422
        assert client.get("/v1/jobs", params={"limit": 0}).status_code == 422

    other, _ = KeyStore(jobs.redis).create("lister-stranger", 10_000, 100, 5)
    with key_client(stack, other) as stranger:
        assert stranger.get("/v1/jobs").json() == {"jobs": [], "next_cursor": None}


def test_a_rare_filter_gives_short_pages_not_slow_ones(settings, jobs, monkeypatch) -> None:
    """30 queued jobs, none done: each page looks at 10 at most, and the
    cursors walk to the end."""
    monkeypatch.setattr(job_module, "LIST_SCAN", 10)
    monkeypatch.setattr(job_module, "LIST_CHUNK", 4)
    owner = "scan-bound-test"
    created = [jobs.create(voice="tone", audio_format="wav", title=f"t{n}", owner=owner).id for n in range(30)]

    async def walk(state: JobState | None) -> list[list[str]]:
        client = AsyncRedis.from_url(settings.redis_url)
        pages, before = [], None
        try:
            while True:
                found, before = await jobs.list_async(client, owner, 50, state, before)
                pages.append([job.id for job in found])
                if before is None:
                    return pages
        finally:
            await client.aclose()

    rare = asyncio.run(walk(JobState.DONE))
    assert all(page == [] for page in rare) and 3 <= len(rare) <= 4
    every = asyncio.run(walk(None))
    assert [job for page in every for job in page] == created[::-1]
    for job_id in created:
        jobs.cancel(job_id)
        jobs.remove(job_id)


def test_each_chapter_reports_its_progress(api: httpx.Client) -> None:
    """Chapter 1 is done while chapter 2 waits on a slow segment (the tone
    stand-in takes 4 s over "dawdle"); at the end every chapter is whole."""
    text = "Chapter 1\n\nQuick words. More quick words.\n\nChapter 2\n\nNow we dawdle. And dawdle more."
    response = api.post("/v1/jobs", json={"text": text, "voice": "tone", "format": "wav"})
    job_id = response.json()["id"]
    first = api.get(f"/v1/jobs/{job_id}").json()["chapters"]
    assert [c["segments_total"] for c in first] == [3, 3]  # each title is a segment of its own
    for _ in range(200):
        chapters = api.get(f"/v1/jobs/{job_id}").json()["chapters"]
        if chapters[0]["ready"]:
            break
        time.sleep(0.05)
    assert chapters[0]["segments_done"] == 3 and chapters[1]["segments_done"] < 3, chapters
    status = wait_for(api, job_id)
    assert [(c["segments_done"], c["segments_total"]) for c in status["chapters"]] == [(3, 3), (3, 3)]
