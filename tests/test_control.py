"""Cancel, resume, the watchdog and fairness, against the real stack."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from tasks.state.fleet import Fleet
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
    assert api.delete(f"/v1/jobs/{job_id}").status_code == 409
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
    from celery import Celery

    app = Celery("chorus-test", broker=settings.redis_url, backend=settings.redis_url)

    # No worker serves the "broken" model: its segments wait forever, like a lost chord.
    job_id = submit(api, "Nobody will ever speak this.", voice="broken")
    key = f"chorus:job:{job_id}"
    for expected_redrives in (1, None):
        deadline = time.monotonic() + 30
        while jobs.get(job_id).state != "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        jobs.redis.hset(key, "deadline_at", time.time() - 1)  # its deadline has passed
        app.send_task("chorus.watchdog", queue="chorus.jobs").get(timeout=30)
        job = jobs.get(job_id)
        if expected_redrives:
            assert job.redrives == 1 and not job.state.final
        else:
            assert job.state == "failed" and "deadline" in job.error


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
