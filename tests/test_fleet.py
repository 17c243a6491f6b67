"""Workers pinned to one model each: loaded once, fed only their own model's
segments, and releasing memory once per job."""

from __future__ import annotations

import re
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


def test_segments_ran_only_on_their_models_worker(three_jobs_each, stack: dict[str, str]) -> None:
    auth = (stack["CHORUS_FLOWER_USER"], stack["CHORUS_FLOWER_PASSWORD"])
    wanted = {job_id: voice for voice, job_ids in three_jobs_each.items() for job_id in job_ids}
    expected_worker = {"joe": "piper-joe-1@", "tone": "tone-1@"}
    deadline = time.monotonic() + 30
    while True:  # Flower learns of tasks from events, a moment after they run
        tasks = httpx.get(
            f"{stack['CHORUS_FLOWER_URL']}/api/tasks", auth=auth, params={"taskname": "chorus.synthesize", "limit": 100000},
            timeout=30,
        ).json()
        mine = [t for t in tasks.values() if _job_of(t) in wanted and t.get("worker")]
        if len(mine) >= 6 * 18 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(mine) == 6 * 18
    for task in mine:
        voice = wanted[_job_of(task)]
        assert task["worker"].startswith(expected_worker[voice]), task
        assert task["state"] == "SUCCESS"


def _job_of(task: dict) -> str | None:
    # Flower shows kwargs as their repr: "{'job_id': '…', 'index': 3, …}"
    found = re.search(r"'job_id': '([0-9a-f]{32})'", task.get("kwargs") or "")
    return found.group(1) if found else None


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
