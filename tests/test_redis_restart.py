"""Redis stopped mid-job and started again (append-only persistence on), on a
stack of its own so the restart cannot disturb other tests. The job either
finishes by itself, or is stuck or failed and finishes after `resume`."""

from __future__ import annotations

import signal
import time

import httpx
import pytest
import redis

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from tests.conftest import TESTS, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory: pytest.TempPathFactory):
    stack = Stack(StackConfig.on_free_ports(
        tmp_path_factory.mktemp("chorus-redis"), workers=[WorkerSpec("tone")], jobs_concurrency=1,
        environment={"CHORUS_REGISTRY_FILE": str(TESTS / "voices.toml"), "CHORUS_RETRY_BACKOFF_S": "0.5"},
    ))
    try:
        yield stack, stack.up()
    finally:
        stack.down()


def test_redis_restarted_mid_job(small_stack) -> None:
    stack, env = small_stack
    api = httpx.Client(base_url=env["CHORUS_API_URL"], headers={"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}, timeout=30)
    text = " ".join(f"Line {n} survives the broker going away, slowly." for n in range(16))
    job_id = api.post("/v1/jobs", json={"text": text, "voice": "tone", "format": "wav"}).json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{job_id}").json()["segments_done"] < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    # supervisord starts it again (append-only file and all).
    old = stack.kill("redis", signal.SIGTERM)  # a clean stop: Redis writes its append-only file
    stack.wait_restarted("redis", old)
    client = redis.Redis.from_url(env["CHORUS_REDIS_URL"])
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.2)

    status = wait_until_final_or_quiet(api, job_id)
    print(f"\nafter the restart the job was {status['state']} ({status['segments_done']}/{status['segments_total']})")
    if status["state"] != "done":
        # Stuck (a segment's late ack was lost with the connection) or failed:
        # once the watchdog's deadline has passed, resume re-drives it.
        client.hset(f"chorus:job:{job_id}", "deadline_at", time.time() - 1)
        assert api.post(f"/v1/jobs/{job_id}/resume").status_code == 202
        status = wait_for(api, job_id, timeout=120)
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"], timeout=30).json()
    assert [s["index"] for s in manifest["segments"]] == list(range(status["segments_total"]))


def wait_until_final_or_quiet(api: httpx.Client, job_id: str, quiet_s: float = 20, limit_s: float = 120) -> dict:
    """The status once final, or once progress has stopped for quiet_s."""
    started, last_change, last_done = time.monotonic(), time.monotonic(), -1
    while time.monotonic() - started < limit_s:
        try:
            status = api.get(f"/v1/jobs/{job_id}").json()
        except (httpx.HTTPError, ValueError):
            time.sleep(0.5)
            continue
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        if status["segments_done"] != last_done:
            last_done, last_change = status["segments_done"], time.monotonic()
        elif time.monotonic() - last_change > quiet_s:
            return status
        time.sleep(0.5)
    return status
