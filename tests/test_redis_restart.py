"""Redis killed mid-job and started again (append-only persistence on), on a
stack of its own so the restart cannot disturb other tests. The job finishes
by itself, every segment once: no resume, no re-drive."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from chorus.stack import Stack, StackConfig
from chorus.tasks.state.jobs import JobStore
from chorus.worker_plan import WorkerSpec
from tests.conftest import TESTS, wait_for
from tests.faults import restart_redis

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

    outage = restart_redis(stack, down_s=2)
    status = wait_for(api, job_id, timeout=120)
    print(f"\nRedis answering {outage.answering_s:.1f} s after the kill; the job {status['state']} "
          f"{outage.since_kill():.1f} s after it")
    assert status["state"] == "done", status["error"]
    assert JobStore(redis.Redis.from_url(env["CHORUS_REDIS_URL"]), ttl_s=3600).redrives(job_id) in (0, None), \
        "the job was re-driven: it did not finish by itself"
    manifest = httpx.get(status["manifest_url"], timeout=30).json()
    assert [s["index"] for s in manifest["segments"]] == list(range(status["segments_total"]))
    assert status["segments_done"] == status["segments_total"]
