"""Fixtures. Integration tests run against the real stack — redis-server,
SeaweedFS, Celery worker processes, uvicorn and Flower — started once per test
session on free loopback ports by the same code as ``chorus up``."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.configs import Settings
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.storage import Storage

TESTS = Path(__file__).parent
MAX_TEXT_CHARS = 1_000_000  # a whole Gutenberg novel fits
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# While this file exists, stand-in segments with the word "flaky" fail.
FLAKY_FILE = Path(tempfile.gettempdir()) / f"chorus-test-flaky-{os.getpid()}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    config = StackConfig.on_free_ports(
        tmp_path_factory.mktemp("chorus"),
        workers=[WorkerSpec("piper-joe", threads=1), WorkerSpec("tone")],
        jobs_concurrency=1,
        environment={
            "CHORUS_REGISTRY_FILE": str(TESTS / "voices.toml"),
            "CHORUS_MAX_TEXT_CHARS": str(MAX_TEXT_CHARS),
            "CHORUS_MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
            "CHORUS_RETRY_BACKOFF_S": "0.1",
            "CHORUS_PRESIGN_SECONDS": "600",
            "CHORUS_TEST_FLAKY_FILE": str(FLAKY_FILE),
            # Webhooks may reach the tests' receivers on loopback, and retry soon.
            "CHORUS_WEBHOOK_ALLOW": "127.0.0.1",
            "CHORUS_WEBHOOK_POLL_S": "0.5",
            "CHORUS_WEBHOOK_BACKOFF_S": "0.5",
            "CHORUS_WEBHOOK_TIMEOUT_S": "3",
            "CHORUS_WEBHOOK_ATTEMPTS": "4",
        },
    )
    running = Stack(config)
    try:
        env = running.up()
        yield env
    finally:
        running.down()


@pytest.fixture(scope="session")
def settings(stack: dict[str, str]) -> Settings:
    return Settings(**{k[len("CHORUS_"):].lower(): v for k, v in stack.items() if k.startswith("CHORUS_")})


@pytest.fixture(scope="session")
def api(stack: dict[str, str]) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {stack['CHORUS_API_KEY']}"}
    with httpx.Client(base_url=stack["CHORUS_API_URL"], timeout=30, headers=headers) as client:
        yield client


@pytest.fixture(scope="session")
def jobs(settings: Settings) -> JobStore:
    return JobStore(redis.Redis.from_url(settings.redis_url), ttl_s=settings.job_ttl_s)


@pytest.fixture(scope="session")
def owner(stack: dict[str, str], jobs: JobStore) -> str:
    """The id of the stack's own API key, which the `api` client uses."""
    from chorus.tasks.state.keys import KeyStore

    return KeyStore(jobs.redis).lookup(stack["CHORUS_API_KEY"]).id


@pytest.fixture(scope="session")
def storage(settings: Settings) -> Storage:
    return Storage(settings)


def wait_for(api: httpx.Client, job_id: str, timeout: float = 120) -> dict:
    """Poll a job's status until it reaches a final state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = api.get(f"/v1/jobs/{job_id}").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {status}")


def submit(api: httpx.Client, text: str, **fields: str) -> str:
    response = api.post("/v1/jobs", json={"text": text, **fields})
    assert response.status_code == 202, response.text
    return response.json()["id"]
