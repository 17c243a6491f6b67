"""``JobTask`` on its own, fast: one task (never a chord) applied in this
process, its job in a real, flushed Redis (``tests/fresh_redis.py``).
Transient errors are retried while attempts remain, permanent ones fail the
job at once, a start beyond the attempts (the earlier starts died with their
process) fails it with the unit's name, and a finished job's task does
nothing. Crash loops with real processes: tests/test_faults.py."""

from __future__ import annotations

import pytest
import redis
from celery import Celery

from chorus.tasks import clients
from chorus.tasks.base import JobTask
from chorus.tasks.errors import AttemptsExhausted, EngineError, JobSettled, VoiceMismatch
from chorus.tasks.state.jobs import JobState, JobStore

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: redis_server, r
ATTEMPTS = 3


@pytest.fixture
def store(r: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> JobStore:
    jobs = JobStore(r, ttl_s=3600)
    monkeypatch.setattr(clients, "jobs", lambda: jobs)
    return jobs


@pytest.fixture
def segment():
    """A job task whose body raises what the test asks for, ``failures`` times."""
    app = Celery("job-task-test", broker="memory://", backend="cache+memory://")
    calls: list[int] = []

    @app.task(base=JobTask, bind=True, name="test.segment", unit="segment {index}", max_attempts=ATTEMPTS,
              retry_backoff=0)
    def task(self, job_id: str, index: int, error: str = "", failures: int = 99) -> str:
        calls.append(index)
        if error and len(calls) <= failures:
            raise {"engine": EngineError("the engine hiccuped"), "voice": VoiceMismatch("wrong model"),
                   "bug": KeyError("oops"), "settled": JobSettled("cancelled meanwhile")}[error]
        return "spoken"

    task.calls = calls
    return task


def running_job(store: JobStore) -> str:
    job = store.create("tone", "wav", "T", owner="alice")
    store.start(job.id, 0, deadline_at=9e9)
    return job.id


def test_transient_error_is_retried_until_the_attempts_run_out(store: JobStore, segment) -> None:
    job_id = running_job(store)
    segment.apply(kwargs={"job_id": job_id, "index": 1, "error": "engine"})
    job = store.get(job_id)
    assert len(segment.calls) == ATTEMPTS and store.attempts(job_id) == {"segment 1": ATTEMPTS}
    assert job.state == JobState.FAILED
    assert job.error == f"segment 1 failed after {ATTEMPTS} attempts: EngineError: the engine hiccuped"


def test_transient_error_that_passes(store: JobStore, segment) -> None:
    job_id = running_job(store)
    result = segment.apply(kwargs={"job_id": job_id, "index": 1, "error": "engine", "failures": 2})
    assert store.state(job_id) == JobState.RUNNING and store.attempts(job_id) == {"segment 1": 3}
    # Applied here, each retry runs at once, and the result is the last run's.
    assert len(segment.calls) == 3 and (result.state, result.result) == ("SUCCESS", "spoken")


@pytest.mark.parametrize(("error", "kind"), [("voice", "VoiceMismatch"), ("bug", "KeyError")])
def test_permanent_error_fails_the_job_at_once(store: JobStore, segment, error: str, kind: str) -> None:
    job_id = running_job(store)
    segment.apply(kwargs={"job_id": job_id, "index": 4, "error": error})
    job = store.get(job_id)
    assert segment.calls == [4] and store.attempts(job_id) == {"segment 4": 1}
    assert job.state == JobState.FAILED and job.error.startswith(f"segment 4 failed: {kind}: ")


def test_a_start_beyond_the_attempts_fails_the_job(store: JobStore, segment) -> None:
    """The earlier starts ended with their process: nothing was recorded, only counted."""
    job_id = running_job(store)
    for _ in range(ATTEMPTS):
        store.begin(job_id, "segment 2")
    result = segment.apply(kwargs={"job_id": job_id, "index": 2})
    assert isinstance(result.result, AttemptsExhausted) and segment.calls == []
    job = store.get(job_id)
    assert job.state == JobState.FAILED
    assert job.error.startswith(f"segment 2 failed after {ATTEMPTS} attempts: the worker process running it died")


def test_a_finished_job_is_skipped(store: JobStore, segment) -> None:
    job_id = running_job(store)
    store.cancel(job_id)
    assert segment.apply(kwargs={"job_id": job_id, "index": 0}).result == {"job": job_id, "skipped": "cancelled"}
    assert segment.apply(kwargs={"job_id": "0" * 32, "index": 0}).result == {"job": "0" * 32, "skipped": "gone"}
    assert segment.calls == [] and store.attempts(job_id) == {}


def test_a_job_that_ends_meanwhile_stops_the_task_quietly(store: JobStore, segment) -> None:
    job_id = running_job(store)
    result = segment.apply(kwargs={"job_id": job_id, "index": 0, "error": "settled"})
    assert result.result == {"job": job_id, "skipped": "settled"}
    assert store.state(job_id) == JobState.RUNNING
