"""Bad input gets a clear error, and a rejected request enqueues nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import MAX_TEXT_CHARS

pytestmark = pytest.mark.stack


@pytest.fixture
def nothing_enqueued(jobs, storage):
    """Asserts, after the test, that no new job, message or stored input appeared
    (jobs of earlier tests may still be finishing: only new ids count)."""
    def snapshot():
        r = jobs.redis
        job_ids = {key.decode().split(":")[2] for key in r.scan_iter("chorus:job:*")}
        stored = {key.split("/")[1] for key in storage.list_keys("jobs/")}
        return job_ids | stored, r.llen("chorus.jobs")

    before_ids, before_queue = snapshot()
    yield
    after_ids, after_queue = snapshot()
    assert after_ids <= before_ids
    assert after_queue <= before_queue


@pytest.mark.parametrize("text", ["", "   \n\t  ", "... !? — 。！", "\n\n\n"])
def test_nothing_speakable_is_422(api: httpx.Client, nothing_enqueued, text: str) -> None:
    response = api.post("/v1/jobs", json={"text": text})
    assert response.status_code == 422
    assert "nothing speakable" in response.json()["detail"]


def test_text_over_the_limit_is_413(api: httpx.Client, nothing_enqueued) -> None:
    response = api.post("/v1/jobs", json={"text": "word " * (MAX_TEXT_CHARS // 5 + 1)})
    assert response.status_code == 413
    assert str(MAX_TEXT_CHARS) in response.json()["detail"]


def test_upload_over_the_limit_is_413(api: httpx.Client, nothing_enqueued) -> None:
    body = ("word " * (MAX_TEXT_CHARS // 5 + 1)).encode()
    response = api.post("/v1/jobs", files={"file": ("big.txt", body, "text/plain")})
    assert response.status_code == 413


def test_upload_binary_is_415(api: httpx.Client, nothing_enqueued) -> None:
    response = api.post("/v1/jobs", files={"file": ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")})
    assert response.status_code == 415


def test_unknown_voice_is_422_and_lists_the_voices(api: httpx.Client, nothing_enqueued) -> None:
    response = api.post("/v1/jobs", json={"text": "Hello there.", "voice": "nobody"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "nobody" in detail and "joe" in detail and "tone" in detail


def test_unknown_format_is_422(api: httpx.Client, nothing_enqueued) -> None:
    response = api.post("/v1/jobs", json={"text": "Hello there.", "format": "midi"})
    assert response.status_code == 422
    assert "format" in response.json()["detail"]


def test_other_content_type_is_415(api: httpx.Client, nothing_enqueued) -> None:
    response = api.post("/v1/jobs", content=b"Hello there.", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_malformed_json_is_422(api: httpx.Client, nothing_enqueued) -> None:
    response = api.post("/v1/jobs", content=b'{"text": ', headers={"content-type": "application/json"})
    assert response.status_code == 422


@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job", "..%2F..%2Fetc"])
def test_unknown_job_is_404(api: httpx.Client, job_id: str) -> None:
    assert api.get(f"/v1/jobs/{job_id}").status_code == 404
    assert api.get(f"/v1/jobs/{job_id}/audio").status_code == 404


def test_voices_are_listed(api: httpx.Client) -> None:
    voices = {v["id"]: v for v in api.get("/v1/voices").json()}
    assert voices["joe"] == {
        "id": "joe", "engine": "piper", "model": "piper-joe", "language": "en", "sample_rate": 22050, "name": None,
    }
    assert voices["tone"]["engine"] == "tone"


def test_health_and_docs(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok", "redis": "ok", "s3": "ok"}
    assert api.get("/docs").status_code == 200
    schema = api.get("/openapi.json").json()
    content = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    assert {"application/json", "multipart/form-data"} <= set(content)


def test_audio_of_an_unfinished_job_is_409(api: httpx.Client, jobs, owner: str) -> None:
    job = jobs.create(voice="joe", audio_format="mp3", title="never run", owner=owner)  # recorded, never enqueued
    response = api.get(f"/v1/jobs/{job.id}/audio")
    assert response.status_code == 409
    assert "queued" in response.json()["detail"]


def test_health_says_degraded_without_internals_and_logs_why(settings, caplog: pytest.LogCaptureFixture) -> None:
    """Redis on a port nobody listens on, S3 up but without the bucket: the probe
    answers 503 with ok/down only; the addresses and errors go to the log."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from chorus.api import deps
    from chorus.api.routes import health
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from chorus.ports import free_port
    from chorus.tasks.state.storage import Storage

    dead_port = free_port()
    app = FastAPI()
    app.include_router(health.router)
    app.dependency_overrides[deps._async_redis] = lambda: AsyncRedis(port=dead_port, retry=Retry(NoBackoff(), 0))  # refused at once
    app.dependency_overrides[deps._storage] = lambda: Storage(settings.model_copy(update={"s3_bucket": "no-such-bucket"}))
    with caplog.at_level("WARNING", logger="chorus.api.routes.health"), TestClient(app) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "redis": "down", "s3": "down"}
    logged = caplog.text
    assert str(dead_port) in logged and "no-such-bucket" in logged
