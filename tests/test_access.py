"""Nobody let in: every request needs a key, a key sees only its own jobs and
voices, and each key has its own limits."""

from __future__ import annotations

import httpx
import pytest

from chorus.tasks.state.keys import KeyStore
from tests.conftest import submit, wait_for
from tests.test_voices import clip, register

pytestmark = pytest.mark.stack


def client_for(stack: dict[str, str], jobs, name: str, **limits: int) -> httpx.Client:
    defaults = {"max_text_chars": 200_000, "max_segments": 1000, "max_concurrent_jobs": 10}
    key, _ = KeyStore(jobs.redis).create(name, **{**defaults, **limits})
    return httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=30)


def test_requests_without_a_valid_key_are_401(stack: dict[str, str]) -> None:
    base = stack["CHORUS_API_URL"]
    for headers in ({}, {"Authorization": "Bearer chorus_not-a-key"}, {"Authorization": "Basic Zm9vOmJhcg=="}):
        response = httpx.post(f"{base}/v1/jobs", json={"text": "Hello."}, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert httpx.get(f"{base}/v1/voices", headers=headers).status_code == 401
    assert httpx.get(f"{base}/healthz").status_code == 200  # health stays open for probes


def test_another_key_cannot_see_cancel_download_or_use(api: httpx.Client, stack, jobs) -> None:
    job_id = submit(api, "A private book. Only mine.", voice="tone")
    status = wait_for(api, job_id)
    voice = register(api, clip()).json()
    with client_for(stack, jobs, "intruder") as other:
        assert other.get(f"/v1/jobs/{job_id}").status_code == 404
        assert other.get(f"/v1/jobs/{job_id}/audio").status_code == 404
        assert other.delete(f"/v1/jobs/{job_id}").status_code == 404
        assert other.post(f"/v1/jobs/{job_id}/resume").status_code == 404
        assert voice["id"] not in {v["id"] for v in other.get("/v1/voices").json()}
        assert other.post("/v1/jobs", json={"text": "Hello.", "voice": voice["id"]}).status_code == 422
        assert other.delete(f"/v1/voices/{voice['id']}").status_code == 404
    assert api.get(f"/v1/jobs/{job_id}").json()["state"] == status["state"] == "done"


def test_per_key_limits(stack, jobs) -> None:
    with client_for(stack, jobs, "small", max_text_chars=40) as small:
        response = small.post("/v1/jobs", json={"text": "This sentence is longer than forty characters, clearly.", "voice": "tone"})
        assert response.status_code == 413
    with client_for(stack, jobs, "few", max_segments=2) as few:
        response = few.post("/v1/jobs", json={"text": "One. Two. Three.", "voice": "tone"})
        assert response.status_code == 413 and "at most 2" in response.json()["detail"]
    with client_for(stack, jobs, "single", max_concurrent_jobs=1) as single:
        first = single.post("/v1/jobs", json={"text": "This one will dawdle a while.", "voice": "tone"})
        assert first.status_code == 202
        second = single.post("/v1/jobs", json={"text": "Me too.", "voice": "tone"})
        assert second.status_code == 429 and int(second.headers["retry-after"]) > 0
        assert wait_for(single, first.json()["id"])["state"] == "done"
        third = single.post("/v1/jobs", json={"text": "Now there is room.", "voice": "tone"})
        assert third.status_code == 202
        wait_for(single, third.json()["id"])


def test_presigned_urls_expire(api: httpx.Client, settings) -> None:
    status = wait_for(api, submit(api, "Short lived link.", voice="tone", format="wav"))
    assert f"X-Amz-Expires={settings.presign_seconds}" in status["result_url"]
