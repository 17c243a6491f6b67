"""Tenants apart, against the real stack: one key's cached segments are not
another's (cache_hits tell nothing about others' texts), and a revoked key is
refused from its very next request, by the API and in `chorus keys list`, and
its unfinished jobs are cancelled while other keys' jobs go on."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from chorus.tasks.state.keys import KeyStore
from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack

TEXT = "A sentence only one tenant wrote. Another one, just as private."


def key_client(stack: dict[str, str], key: str) -> httpx.Client:
    return httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=30)


def revoke(stack: dict[str, str], key_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chorus.cli", "keys", "revoke", key_id], capture_output=True,
                          text=True, env={**os.environ, **stack}, timeout=60, check=False)


def run(client: httpx.Client, text: str) -> dict:
    response = client.post("/v1/jobs", json={"text": text, "voice": "tone"})
    assert response.status_code == 202, response.text
    status = wait_for(client, response.json()["id"])
    assert status["state"] == "done", status["error"]
    return status


def test_the_segment_cache_is_per_key(stack, jobs) -> None:
    keys = KeyStore(jobs.redis)
    (key_a, _), (key_b, _) = keys.create("tenant-a", 10_000, 100, 5), keys.create("tenant-b", 10_000, 100, 5)
    with key_client(stack, key_a) as a, key_client(stack, key_b) as b:
        assert run(a, TEXT)["cache_hits"] == 0
        assert run(b, TEXT)["cache_hits"] == 0  # B learns nothing of what A submitted
        assert run(a, TEXT)["cache_hits"] == 2  # A's own segments are cached for A


def test_revoked_key_is_refused_at_once(stack, jobs) -> None:
    key, record = KeyStore(jobs.redis).create("leaving", 10_000, 100, 5)
    with key_client(stack, key) as client:
        assert client.get("/v1/voices").status_code == 200
        environment = {**os.environ, **stack}
        revoke = subprocess.run([sys.executable, "-m", "chorus.cli", "keys", "revoke", record.id],
                                capture_output=True, text=True, env=environment, timeout=60, check=False)
        assert revoke.returncode == 0, revoke.stderr
        for method, path in (("GET", "/v1/voices"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/" + "0" * 32)):
            response = client.request(method, path, json={"text": "Hello."} if method == "POST" else None)
            assert response.status_code == 401, response.text
            assert "revoked" in response.json()["detail"]
            assert response.headers["www-authenticate"] == "Bearer"
    listing = subprocess.run([sys.executable, "-m", "chorus.cli", "keys", "list"],
                             capture_output=True, text=True, env=environment, timeout=60, check=False)
    line = next(line for line in listing.stdout.splitlines() if line.startswith(record.id))
    assert "REVOKED" in line
    unknown = subprocess.run([sys.executable, "-m", "chorus.cli", "keys", "revoke", "0" * 16],
                             capture_output=True, text=True, env=environment, timeout=60, check=False)
    assert unknown.returncode == 1 and "no key with id" in unknown.stderr


SLOW = " ".join(f"Sentence {n} will dawdle before it ends." for n in range(8))


def test_revoking_a_key_cancels_its_unfinished_jobs_and_no_others(stack, jobs, storage) -> None:
    store = KeyStore(jobs.redis)
    (leaving, record), (staying, _) = store.create("leaving-mid-book", 10_000, 100, 5), store.create("staying", 10_000, 100, 5)
    with key_client(stack, leaving) as a, key_client(stack, staying) as b:
        running, waiting = submit(a, SLOW, voice="tone"), submit(a, SLOW, voice="tone")
        other = submit(b, "Another tenant's book. It will dawdle a little, then end.", voice="tone")
        deadline = time.monotonic() + 60
        while a.get(f"/v1/jobs/{running}").json()["segments_done"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert jobs.get(running).state.value == "running"
        revoked = revoke(stack, record.id)
        assert revoked.returncode == 0, revoked.stderr
        assert "2 unfinished jobs cancelled" in revoked.stdout
        for job_id in (running, waiting):
            assert jobs.get(job_id).state.value == "cancelled"
            assert storage.list_keys(f"jobs/{job_id}/") == []
        assert jobs.active_jobs(record.id) == 0
        assert jobs.get(other).state.value in ("queued", "running")
        assert wait_for(b, other)["state"] == "done"
        assert jobs.get(running).state.value == "cancelled"  # a segment in flight did not bring it back
