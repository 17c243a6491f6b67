"""Tenants apart, against the real stack: one key's cached segments are not
another's (cache_hits tell nothing about others' texts), and a revoked key is
refused from its very next request, by the API and in `chorus keys list`."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from chorus.tasks.state.keys import KeyStore
from tests.conftest import wait_for

pytestmark = pytest.mark.stack

TEXT = "A sentence only one tenant wrote. Another one, just as private."


def key_client(stack: dict[str, str], key: str) -> httpx.Client:
    return httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=30)


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
