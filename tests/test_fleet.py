"""Workers pinned to one model each: loaded once, fed only their own model's
segments, and releasing memory once per job."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack


def _sentences(count: int, tag: str) -> str:
    return " ".join(f"Line {n} of {tag}." for n in range(count))


def piper_record(settings) -> dict[str, str]:
    import redis

    from chorus.tasks.state.fleet import Fleet

    fleet = Fleet(redis.Redis.from_url(settings.redis_url), ttl_s=60)
    [node] = fleet.nodes_of("piper-joe")
    return fleet.get(node)


@pytest.fixture(scope="module")
def piper_before(settings) -> dict[str, str]:
    """The Piper worker's record before the three jobs (earlier tests may have
    killed its pool process, which then loaded the model again)."""
    return piper_record(settings)


@pytest.fixture(scope="module")
def three_jobs_each(api: httpx.Client, piper_before) -> dict[str, list[str]]:
    """Three Piper jobs and three stand-in jobs, run side by side, all done."""
    ids = {
        "joe": [submit(api, _sentences(18, f"book {n}"), voice="joe", format="wav") for n in range(3)],
        "tone": [submit(api, _sentences(18, f"tome {n}"), voice="tone", format="wav") for n in range(3)],
    }
    for job_ids in ids.values():
        for job_id in job_ids:
            status = wait_for(api, job_id, timeout=180)
            assert status["state"] == "done", status["error"]
            assert status["segments_total"] == 18
    return ids


def test_model_loaded_once_across_three_jobs(three_jobs_each, piper_before, settings) -> None:
    after = piper_record(settings)
    # Counted by the worker: the same process, no load during 54 segments.
    assert after["loads"] == piper_before["loads"] and after["pid"] == piper_before["pid"]
    assert int(after["segments"]) - int(piper_before.get("segments", 0)) == 54
    assert after["provider"] == "CPUExecutionProvider"


def test_segments_ran_only_on_their_models_worker(three_jobs_each, jobs) -> None:
    """Each job's segments were spoken only by its model's worker: the workers
    a job's chord results name (its memory releases go to them) are its
    model's. Segments send no task events, so Flower does not list them."""
    expected_worker = {"joe": "piper-joe-1@", "tone": "tone-1@"}
    for voice, job_ids in three_jobs_each.items():
        for job_id in job_ids:
            deadline = time.monotonic() + 10
            while not jobs.releases(job_id) and time.monotonic() < deadline:
                time.sleep(0.1)
            served = jobs.releases(job_id)
            assert served and all(worker.startswith(expected_worker[voice]) for worker in served), served


def test_memory_released_once_per_job_on_each_participating_worker(three_jobs_each, jobs) -> None:
    for voice, job_ids in three_jobs_each.items():
        prefix = {"joe": "piper-joe-1@", "tone": "tone-1@"}[voice]
        for job_id in job_ids:
            deadline = time.monotonic() + 10
            while not jobs.releases(job_id) and time.monotonic() < deadline:
                time.sleep(0.1)
            releases = jobs.releases(job_id)
            assert len(releases) == 1 and next(iter(releases)).startswith(prefix)
            assert list(releases.values()) == [1]
