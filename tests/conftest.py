"""Fixtures. Integration tests run against the real stack — redis-server,
SeaweedFS, Celery worker processes (one per lane), the beat, uvicorn and
Flower, all under supervisord — started once per test session on free
loopback ports by the same code as ``chorus up``."""

from __future__ import annotations

import gc
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from chorus.api.submission import Received, Submission, prepare
from chorus.configs import Settings, load_registry
from chorus.configs.settings import DEFAULT_REGISTRY
from chorus.stack import Stack, StackConfig
from chorus.worker_plan import WorkerSpec
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.keys import ApiKey
from chorus.tasks.state.storage import Storage
from chorus.tasks.text.plan import Plan
from chorus.tasks.text.spoken.lexicon import Entry

TESTS = Path(__file__).parent
# Real books (Gutenberg texts) kept beside the checkout, never copied into it.
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
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
            # The watchdog runs often enough for a test to see it run again.
            "CHORUS_WATCHDOG_INTERVAL_S": "5",
        },
    )
    running = Stack(config)
    try:
        env = running.up()
        yield env
    finally:
        running.down()


@pytest.fixture(scope="session")
def services(stack: dict[str, str]) -> Stack:
    """The test stack's services, as supervisord runs them: ``services.pid(name)``,
    ``services.kill(name, signal)``, ``services.wait_restarted(name, old_pid)``."""
    return Stack(StackConfig(Path(stack["CHORUS_DATA_DIR"])))


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


# --------------------------------------------------------------------------- #
# Real books, where the checkout has them beside it
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The folder of real books (``../shared/corpus`` beside the checkout);
    a test that asks for it skips where it is absent. Ask for it before any
    stack fixture, so such a test skips before the stack starts."""
    if not CORPUS.is_dir():
        pytest.skip(f"no corpus of real books at {CORPUS}")
    return CORPUS


# --------------------------------------------------------------------------- #
# A text planned as POST /v1/jobs plans it, without the stack
# --------------------------------------------------------------------------- #

REGISTRY = load_registry(TESTS / "voices.toml")  # the test stack's voices: "tone" needs no model files
PLANNING_SETTINGS = Settings(registry_file=TESTS / "voices.toml", default_voice="tone", max_text_chars=MAX_TEXT_CHARS)
CALLER = ApiKey("owner0001", "test", max_text_chars=1_000_000, max_segments=50_000, max_concurrent_jobs=10)
# The voice a deployment reads by default, from the registry it ships.
SHIPPED_REGISTRY = load_registry(DEFAULT_REGISTRY)
JOE, JOE_MODEL = SHIPPED_REGISTRY.voice("joe"), SHIPPED_REGISTRY.model_of("joe")


def submission_of(received: Received, caller: ApiKey = CALLER, key_lexicon: tuple[Entry, ...] = ()) -> Submission:
    """What the API's ``prepare`` makes of a request, with the test stack's voices."""
    return prepare(received, caller, REGISTRY.voices, REGISTRY.models, PLANNING_SETTINGS, key_lexicon=key_lexicon)


def plan_of(submission: Submission) -> Plan:
    """The plan a submission stores, as every task of its job reads it."""
    return Plan.from_dict(json.loads(submission.plan_document))


def plan_text(text: str, key_lexicon: tuple[Entry, ...] = (), **fields: object) -> Plan:
    """The plan of ``text`` sent as JSON with these request fields (the voice is "tone" unless they say)."""
    received = Received("json", json.dumps({"text": text, **fields}).encode())
    return plan_of(submission_of(received, key_lexicon=key_lexicon))


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #


def best_time(run: Callable[[], object], repeats: int = 5, before: Callable[[], object] = lambda: None) -> float:
    """CPU seconds of this process (other processes on the machine do not
    count), the best of a few runs, without the garbage collector's pauses.
    ``before`` runs ahead of each run, untimed (to start each one cold)."""
    times = []
    gc.disable()
    try:
        for _ in range(repeats):
            before()
            start = time.process_time()
            run()
            times.append(time.process_time() - start)
    finally:
        gc.enable()
    return min(times)
