"""Outages. First, against a real redis-server stopped and started again:
the clients' reconnection and a message sent while the broker is away.

Then chaos: Redis, SeaweedFS and the API each killed mid-job (SIGKILL) and back
a few seconds later, on a stack of its own. Each time the job in flight ends
done with every segment exactly once, by itself (no resume), another key's
job finishes meanwhile, and the API answers only 2xx, 503 (with Retry-After)
or nothing at all while the service is away, never 500.

Each test prints the measured time to recover: from the kill to the service
answering, and to the job's done."""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from celery import Celery
from kombu.exceptions import OperationalError

from chorus.stack import Stack, StackConfig
from chorus.tasks import clients
from chorus.tasks.state.keys import KeyStore
from chorus.worker_plan import WorkerSpec
from tests.conftest import TESTS
from tests.faults import Outage, restart_api, restart_redis, restart_s3
from tests.readback import read_audio_file

if TYPE_CHECKING:
    from tests.fresh_redis import RedisServer

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: restartable_redis

DOWN_S = 5  # how long each service stays away (chaos)
AWAY_S = 1.5  # how long the fast tests' redis-server stays away


def back_after(server: RedisServer, away_s: float) -> threading.Thread:
    """Stop the server now and start it again ``away_s`` later, in a thread."""
    server.stop()
    thread = threading.Thread(target=lambda: (time.sleep(away_s), server.start()), daemon=True)
    thread.start()
    return thread


def test_redis_client_rides_out_a_restart(restartable_redis: RedisServer) -> None:
    """A command sent while Redis is away waits for it, as the shared clients are built."""
    client = redis.Redis.from_url(restartable_redis.url, retry=clients.redis_retry(10))
    client.set("before", 1)
    restarted = back_after(restartable_redis, AWAY_S)
    started = time.monotonic()
    assert client.incr("after") == 1
    assert time.monotonic() - started >= AWAY_S * 0.8
    restarted.join()


def test_redis_default_client_fails_in_a_restart(restartable_redis: RedisServer) -> None:
    """What the retry fixes: redis-py's default gives up within a second."""
    client = redis.Redis.from_url(restartable_redis.url)
    client.ping()
    restarted = back_after(restartable_redis, AWAY_S)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    restarted.join()


def broker_on(server: RedisServer) -> Celery:
    return Celery("outage-test", broker=server.url)


def test_retry_publish_waits_for_the_broker(restartable_redis: RedisServer) -> None:
    """A message sent (a task's retry) while the broker is away is published once it is back."""
    app = broker_on(restartable_redis)
    restarted = back_after(restartable_redis, AWAY_S)
    app.send_task("chorus.test", queue="outage", retry_policy=clients.publish_retry_policy(10))
    restarted.join()
    assert redis.Redis.from_url(restartable_redis.url).llen("outage") == 1


def test_default_publish_fails_while_the_broker_is_away(restartable_redis: RedisServer) -> None:
    """What the policy fixes: with Celery's default policy the send fails, and
    inside Task.retry that failure becomes Reject(requeue=False): the segment is dropped."""
    app = broker_on(restartable_redis)
    restarted = back_after(restartable_redis, AWAY_S)
    with pytest.raises(OperationalError):
        app.send_task("chorus.test", queue="outage")
    restarted.join()


def test_retry_budgets() -> None:
    assert clients.reconnect_attempts(0) == 0
    assert clients.reconnect_attempts(3.1) == 5  # 0.1 + 0.2 + 0.4 + 0.8 + 1.6
    assert clients.reconnect_attempts(30) == 18  # then 2 s each
    policy = clients.publish_retry_policy(30)
    waits = [min(policy["interval_max"], policy["interval_start"] + n * policy["interval_step"])
             for n in range(policy["max_retries"])]
    assert 30 <= sum(waits) < 32
SEGMENTS = 81
OTHER_KEY = "chaos-other-key-0123456789abcdef"
# The tone stand-in at 4 ms per character: a job of 81 segments runs long
# enough (about 20 s on two cores) to be killed under at its middle.
SLOW_TONE = "options.ms_per_char = 4"


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("chorus-chaos")
    registry = data.parent / f"{data.name}-voices.toml"
    registry.write_text((TESTS / "voices.toml").read_text().replace("options.ms_per_char = 0.2", SLOW_TONE))
    stack = Stack(StackConfig.on_free_ports(
        data, workers=[WorkerSpec("tone")], jobs_concurrency=1,
        environment={"CHORUS_REGISTRY_FILE": str(registry), "CHORUS_RETRY_BACKOFF_S": "0.5",
                     "CHORUS_RETRY_BACKOFF_MAX_S": "4"},
    ))
    try:
        env = stack.up()
        KeyStore(redis.Redis.from_url(env["CHORUS_REDIS_URL"])).register(OTHER_KEY, "other", 1_000_000, 50_000, 10)
        yield stack, env
    finally:
        stack.down()


def client(env: dict[str, str], key: str) -> httpx.Client:
    return httpx.Client(base_url=env["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=15)


class Watcher:
    """Polls the API in a thread while a service is away, counting answers by
    status code (connection errors as "down") and keeping any 5xx other than 503."""

    def __init__(self, api: httpx.Client, job_id: str) -> None:
        self.api, self.job_id = api, job_id
        self.seen: Counter[str] = Counter()
        self.bad: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                response = self.api.get(f"/v1/jobs/{self.job_id}")
            except httpx.HTTPError:
                self.seen["down"] += 1
            else:
                self.seen[str(response.status_code)] += 1
                if response.status_code >= 500 and (
                    response.status_code != 503 or "retry-after" not in response.headers
                ):
                    self.bad.append(f"{response.status_code} {response.text[:200]}")
            self._stop.wait(0.2)


def poll(api: httpx.Client, job_id: str) -> dict | None:
    try:
        response = api.get(f"/v1/jobs/{job_id}")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def submit(api: httpx.Client, text: str, timeout: float = 60) -> str:
    """POST a job, trying again while the API answers 503 or not at all."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = api.post("/v1/jobs", json={"text": text, "voice": "tone", "format": "wav"})
            if response.status_code == 202:
                return response.json()["id"]
            assert response.status_code == 503, response.text
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the API took no job"
        time.sleep(0.5)


def wait_done(api: httpx.Client, job_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = poll(api, job_id)
        if status and status["state"] in ("done", "failed", "cancelled"):
            assert status["state"] == "done", status["error"]
            return status
        time.sleep(0.25)
    raise AssertionError(f"job {job_id} not done after {timeout} s: {poll(api, job_id)}")


def wait_progress(api: httpx.Client, job_id: str, done: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (status := poll(api, job_id)) is None or status["segments_done"] < done:
        assert status is None or status["state"] == "running" or status["state"] == "queued", status
        assert time.monotonic() < deadline, f"job {job_id} never reached {done} segments"
        time.sleep(0.1)


def assert_each_segment_once(status: dict) -> None:
    assert status["segments_done"] == status["segments_total"]
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    assert [s["index"] for s in manifest["segments"]] == list(range(status["segments_total"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "book.wav"
        path.write_bytes(httpx.get(status["result_url"], timeout=60).content)
        samples, rate = read_audio_file(path)
    assert abs(len(samples) / rate - manifest["duration_seconds"]) < 0.05


def book(label: str, count: int = SEGMENTS) -> str:
    return " ".join(f"Sentence {n} of the {label} book goes on while a service dies." for n in range(count))


def survive(chaos_stack, label: str, fault) -> tuple[Outage, float]:
    """A long job killed under at its middle by ``fault``; another key's job
    sent once the service is back. Both end done, every segment once."""
    stack, env = chaos_stack
    api, other = client(env, env["CHORUS_API_KEY"]), client(env, OTHER_KEY)
    job_id = submit(api, book(label))
    wait_progress(api, job_id, SEGMENTS // 2)
    with Watcher(api, job_id) as watcher:
        outage = fault(stack)
        other_id = submit(other, book(f"other {label}", 6))
        status = wait_done(api, job_id)
    done_s = outage.since_kill()
    assert_each_segment_once(status)
    assert_each_segment_once(wait_done(other, other_id))
    print(f"\n{label}: answering {outage.answering_s:.1f} s after the kill, job done {done_s:.1f} s after it;"
          f" API answers meanwhile {dict(watcher.seen)}")
    assert not watcher.bad, watcher.bad
    return outage, done_s


@pytest.mark.stack
@pytest.mark.chaos
def test_redis_killed_mid_job(chaos_stack) -> None:
    survive(chaos_stack, "redis", lambda stack: restart_redis(stack, DOWN_S))


@pytest.mark.stack
@pytest.mark.chaos
def test_s3_killed_mid_job(chaos_stack) -> None:
    survive(chaos_stack, "s3", lambda stack: restart_s3(stack, DOWN_S))


@pytest.mark.stack
@pytest.mark.chaos
def test_api_killed_under_load(chaos_stack) -> None:
    """While the API is killed and started again, clients keep sending jobs:
    each request gets a 202, a 503 or a connection error; every job that got
    its 202 ends done."""
    stack, env = chaos_stack
    accepted: list[str] = []
    refused: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        with client(env, OTHER_KEY) as api:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = api.post("/v1/jobs", json={"text": f"Load job {n} is short.", "voice": "tone"})
                except httpx.HTTPError:
                    refused["down"] += 1
                else:
                    if response.status_code == 202:
                        accepted.append(response.json()["id"])
                    else:
                        refused[str(response.status_code)] += 1
                stop.wait(0.1)

    sender = threading.Thread(target=load, daemon=True)

    def fault(stack: Stack) -> Outage:
        sender.start()  # load before the kill, during the restart, and a little after
        time.sleep(2)
        outage = restart_api(stack)
        time.sleep(3)
        stop.set()
        return outage

    try:
        survive(chaos_stack, "api", fault)
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(timeout=30)
    assert set(refused) <= {"down", "503", "429"}, refused
    other = client(env, OTHER_KEY)
    for job_id in accepted:
        assert_each_segment_once(wait_done(other, job_id))
    print(f"api: {len(accepted)} jobs accepted under load, all done; refused {dict(refused)}")
