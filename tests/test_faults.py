"""Faults with real processes: a worker killed mid-job, S3 frozen for ten
seconds, the jobs worker killed during assembly. Each job still finishes with
every segment exactly once. A segment that kills its worker every time fails
its job after the configured attempts. Each test is bounded in time."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from chorus.stack import Stack
from chorus.tasks import scratch
from tests.conftest import submit, wait_for
from tests.readback import read_audio_file

pytestmark = pytest.mark.stack


def pool_child(services: Stack, service: str) -> int:
    """The pool process of a worker started by the stack (it holds the model)."""
    parent = services.pid(service)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    raise AssertionError(f"{service} has no pool process")


def assembling_process(services: Stack, timeout: float = 10) -> int | None:
    """The jobs worker's pool process that is assembling now: the one whose
    scratch directory holds an assembly."""
    parent = services.pid("worker-jobs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = set(Path(f"/proc/{parent}/task/{parent}/children").read_text().split())
        for work in scratch.ROOT.glob("*/*/*/assemble-*"):
            if work.parent.name in children:
                return int(work.parent.name)
        time.sleep(0.02)
    return None


def wait_until(check, timeout: float = 60, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(every)


def assert_each_segment_once(api: httpx.Client, status: dict) -> None:
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    assert [s["index"] for s in manifest["segments"]] == list(range(status["segments_total"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"book.{status['format']}"
        path.write_bytes(httpx.get(status["result_url"], timeout=60).content)
        samples, rate = read_audio_file(path)
    assert abs(len(samples) / rate - manifest["duration_seconds"]) < 0.05


def test_piper_worker_killed_mid_job(api: httpx.Client, services: Stack) -> None:
    text = " ".join(f"This is sentence number {n} of a job that loses its worker." for n in range(14))
    job_id = submit(api, text, voice="joe", format="wav")
    wait_until(lambda: api.get(f"/v1/jobs/{job_id}").json()["segments_done"] >= 3)
    os.kill(pool_child(services, "worker-piper-joe-1"), signal.SIGKILL)
    assert_each_segment_once(api, wait_for(api, job_id, timeout=180))


def test_s3_frozen_for_ten_seconds(api: httpx.Client, services: Stack) -> None:
    s3 = services.pid("s3")
    job_id = submit(api, " ".join(f"Storage blinks during line {n}." for n in range(12)), voice="tone", format="wav")
    wait_until(lambda: api.get(f"/v1/jobs/{job_id}").json()["segments_done"] >= 2)
    os.kill(s3, signal.SIGSTOP)  # S3 stops answering, connections hang
    try:
        time.sleep(10)
    finally:
        os.kill(s3, signal.SIGCONT)
    assert_each_segment_once(api, wait_for(api, job_id, timeout=180))


def test_jobs_worker_killed_during_assembly(api: httpx.Client, services: Stack) -> None:
    for attempt in range(3):  # assembly must still be running when the kill lands
        text = "\n\n".join(" ".join(f"Paragraph {p}, sentence {n}, attempt {attempt}." for n in range(8)) for p in range(25))
        job_id = submit(api, text, voice="tone", format="m4b")
        wait_until(lambda: api.get(f"/v1/jobs/{job_id}").json()["state"] in ("assembling", "done", "failed"), timeout=120)
        if api.get(f"/v1/jobs/{job_id}").json()["state"] != "assembling":
            continue
        killed = assembling_process(services)
        if killed is None:  # finished between the two looks
            continue
        os.kill(killed, signal.SIGKILL)
        status = wait_for(api, job_id, timeout=180)
        assert_each_segment_once(api, status)
        # The encoded file it left behind went with the pool process that replaced it.
        assert not any(scratch.ROOT.glob(f"*/*/{killed}"))
        return
    pytest.fail("assembly always finished before it could be interrupted")


def test_segment_that_kills_its_worker_fails_the_job(api: httpx.Client, settings) -> None:
    """The stand-in ends its pool process (os._exit) on "perish": Celery gives
    the segment back to the queue each time (late ack, reject on worker lost),
    and the start after the last allowed attempt fails the job, with the
    segment's index, without waiting for any deadline."""
    started = time.monotonic()
    job_id = submit(api, "A fine first line. Then perish goes the second. A fine third.", voice="tone")
    status = wait_for(api, job_id, timeout=90)
    elapsed = time.monotonic() - started
    assert status["state"] == "failed"
    assert status["error"].startswith(f"segment 1 failed after {settings.segment_attempts} attempts"), status["error"]
    assert "died" in status["error"]
    assert elapsed < 60, f"{elapsed:.1f} s"
    print(f"crash-looping segment failed its job in {elapsed:.1f} s")
    # The worker, with a new pool process, serves the next job.
    assert wait_for(api, submit(api, "Still here after all that.", voice="tone"), timeout=60)["state"] == "done"
