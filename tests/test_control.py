"""Cancel, resume, the watchdog and fairness, against the real stack."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from chorus.tasks.state.fleet import Fleet
from tests import backstage
from tests.conftest import FLAKY_FILE, submit, wait_for

pytestmark = pytest.mark.stack


def tone_segments(settings) -> int:
    fleet = Fleet(redis.Redis.from_url(settings.redis_url), ttl_s=60)
    return sum(int(fleet.get(node).get("segments", 0)) for node in fleet.nodes_of("tone"))


def test_cancel_mid_job(api: httpx.Client, storage, settings) -> None:
    text = " ".join(f"Sentence {n} will dawdle before it ends." if n % 2 else f"Sentence {n} is quick." for n in range(30))
    job_id = submit(api, text, voice="tone")
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{job_id}").json()["segments_done"] < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    started = time.monotonic()
    response = api.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert time.monotonic() - started < 5
    spoken = tone_segments(settings)
    time.sleep(6)  # longer than one slow segment: at most the one in flight finishes
    assert tone_segments(settings) - spoken <= 1
    status = api.get(f"/v1/jobs/{job_id}").json()
    assert status["state"] == "cancelled" and status["segments_done"] < 30
    assert storage.list_keys(f"jobs/{job_id}/") == []
    assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 409  # cancelled stays cancelled
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"
    # Deleting the finished job removes its record.
    assert api.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert api.get(f"/v1/jobs/{job_id}").status_code == 404
    # The workers keep serving other jobs.
    assert wait_for(api, submit(api, "Life goes on.", voice="tone"))["state"] == "done"


def test_engine_error_then_resume(api: httpx.Client) -> None:
    FLAKY_FILE.touch()
    try:
        job_id = submit(api, "First comes a fine line. Then a flaky one. Last a fine one.", voice="tone")
        status = wait_for(api, job_id)
        assert status["state"] == "failed"
        assert "segment 1" in status["error"] and "flaky" in status["error"]
    finally:
        FLAKY_FILE.unlink()
    assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 202
    status = wait_for(api, job_id)
    assert status["state"] == "done", status["error"]
    assert status["cache_hits"] == 2  # the two segments that had succeeded were not synthesised again
    assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 409  # done jobs need no resume


def test_watchdog_redrives_then_fails_a_stuck_job(api: httpx.Client, jobs, settings) -> None:
    # No worker serves the "broken" model: its segments wait forever, like a lost chord.
    job_id = submit(api, "Nobody will ever speak this.", voice="broken")
    key = f"chorus:job:{job_id}"
    for expected_redrives in (1, None):
        deadline = time.monotonic() + 30
        while jobs.get(job_id).state != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        jobs.redis.hset(key, "deadline_at", time.time() - 1)  # its deadline has passed
        backstage.run_watchdog(settings)
        job = jobs.get(job_id)
        if expected_redrives:
            assert job.redrives == 1 and not job.state.final
        else:
            assert job.state == "failed" and "deadline" in job.error


def test_watchdog_drives_a_job_whose_split_was_lost(api: httpx.Client, jobs, storage, settings, stack) -> None:
    """Recorded and planned, but its split message never arrived: queued with
    a deadline from the start, found by the watchdog, re-driven, finished."""
    job = backstage.record_unsent_job(settings, jobs, storage, stack["CHORUS_API_KEY"],
                                      "A split that never ran. It still gets read.", voice="tone")
    assert jobs.get(job.id).deadline_at > time.time()  # queued jobs have a deadline too
    jobs.redis.hset(f"chorus:job:{job.id}", "deadline_at", time.time() - 1)
    backstage.run_watchdog(settings)
    status = wait_for(api, job.id, timeout=60)
    assert status["state"] == "done", status["error"]
    assert jobs.get(job.id).redrives == 1


def test_redelivered_split_launches_one_chord(api: httpx.Client, jobs, storage, settings, stack) -> None:
    text = " ".join(f"Split twice, sentence {n}, spoken once." for n in range(12))
    job = backstage.record_unsent_job(settings, jobs, storage, stack["CHORUS_API_KEY"], text, voice="tone", format="wav")
    spoken = tone_segments(settings)
    backstage.split(settings, job.id)
    backstage.split(settings, job.id)  # the same split delivered again
    status = wait_for(api, job.id, timeout=60)
    assert status["state"] == "done", status["error"]
    time.sleep(1)  # anything a second chord had started would have shown by now
    attempts = jobs.attempts(job.id)
    assert attempts["split"] == 2  # both ran ...
    assert attempts["assembly"] == 1  # ... one chord: one assembly,
    assert {attempts[f"segment {n}"] for n in range(12)} == {1}  # each segment once
    assert tone_segments(settings) - spoken == 12
    manifest = httpx.get(status["manifest_url"], timeout=30).json()
    assert [s["index"] for s in manifest["segments"]] == list(range(12))


def test_a_job_waiting_behind_others_is_postponed_not_redriven(api: httpx.Client, jobs, settings) -> None:
    """Past its deadline, but its model's queue is full of other work that a
    live worker is taking: the watchdog gives it more time, it does not queue
    its segments a second time."""
    ahead = submit(api, " ".join(f"Line {n} of the book ahead." for n in range(1500)), voice="tone")
    waiting = submit(api, " ".join(f"Line {n} of the book behind." for n in range(300)), voice="tone")
    try:
        deadline = time.monotonic() + 30
        while jobs.get(waiting).state != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        jobs.redis.hset(f"chorus:job:{waiting}", "deadline_at", time.time() - 1)
        backstage.run_watchdog(settings)
        job = jobs.get(waiting)
        assert job.state == "running" and job.redrives == 0
        assert job.deadline_at > time.time()  # postponed by the work still queued ahead
    finally:
        api.delete(f"/v1/jobs/{ahead}")
        api.delete(f"/v1/jobs/{waiting}")


def test_short_job_is_not_stuck_behind_a_long_one(api: httpx.Client) -> None:
    long_text = " ".join(f"Line {n} of the long book." for n in range(2000))
    long_id = submit(api, long_text, voice="tone")
    time.sleep(1.0)
    short_id = submit(api, "A short note. Two lines.", voice="tone")
    short = wait_for(api, short_id, timeout=90)
    long_status = api.get(f"/v1/jobs/{long_id}").json()
    assert short["state"] == "done"
    assert long_status["state"] in ("running", "assembling"), long_status
    assert long_status["segments_done"] < long_status["segments_total"]
    api.delete(f"/v1/jobs/{long_id}")


def test_priority_levels_double_in_width() -> None:
    """A job's first 20 segments at level 0, then levels twice as wide: a job of
    a few hundred segments never shares a level with a long book's later ones."""
    from chorus.tasks.pipeline import priority_of

    edges = [p for p in range(1, 20_000) if priority_of(p) != priority_of(p - 1)]
    assert edges == [20, 60, 140, 300, 620, 1260, 2540, 5100, 10220]
    assert priority_of(0) == 0 and priority_of(10**6) == 9
