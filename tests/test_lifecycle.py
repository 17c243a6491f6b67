"""Objects live and die with their jobs, against the real stack: a cancelled
job leaves nothing in S3 even when its assembly was in flight; a finished job
deleted by its owner loses its objects and its record; an expired job loses
its objects and frees its owner's slot; abandoned multipart uploads are
aborted; results nobody reads are not kept."""

from __future__ import annotations

import time

import httpx
import pytest
import redis

from chorus.tasks.state.keys import KeyStore
from tests import backstage
from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack


def jobs_worker_idle(settings, timeout: float = 120) -> None:
    """Wait until the jobs worker runs nothing (an assembly in flight has settled)."""
    client = backstage.celery_client(settings)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            active = client.control.inspect(timeout=1.0).active() or {}
            if not any(tasks for node, tasks in active.items() if node.startswith("jobs@")):
                return
            time.sleep(0.2)
    finally:
        client.close()
    raise AssertionError("the jobs worker is still busy")


def redis_keys_of(jobs, job_id: str) -> list[bytes]:
    return list(jobs.redis.scan_iter(f"chorus:job:{job_id}*"))


def test_cancel_during_assembly_leaves_no_object(api: httpx.Client, storage, settings) -> None:
    for attempt in range(3):  # the cancel must land while the assembly runs
        text = "\n\n".join(" ".join(f"Paragraph {p}, line {n}, try {attempt}." for n in range(8)) for p in range(30))
        job_id = submit(api, text, voice="tone", format="m4b")
        deadline = time.monotonic() + 120
        while api.get(f"/v1/jobs/{job_id}").json()["state"] not in ("assembling", "done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        response = api.delete(f"/v1/jobs/{job_id}")
        if response.status_code != 200:  # it finished first: deleted instead
            continue
        assert response.json()["state"] == "cancelled"
        jobs_worker_idle(settings)
        assert storage.list_keys(f"jobs/{job_id}/") == []
        assert storage.uploads_in_progress(f"jobs/{job_id}/") == []
        assert api.get(f"/v1/jobs/{job_id}").json()["state"] == "cancelled"
        return
    pytest.fail("the assembly always finished before the cancel landed")


def test_delete_a_finished_job(api: httpx.Client, jobs, storage) -> None:
    text = "Chapter 1\n\nThe first part of it.\n\nChapter 2\n\nThe second part of it."
    status = wait_for(api, submit(api, text, voice="tone"))
    job_id = status["id"]
    assert status["state"] == "done", status["error"]
    assert any("/chapters/" in key for key in storage.list_keys(f"jobs/{job_id}/"))
    response = api.delete(f"/v1/jobs/{job_id}")
    assert response.status_code == 204 and response.content == b""
    assert api.get(f"/v1/jobs/{job_id}").status_code == 404
    assert api.delete(f"/v1/jobs/{job_id}").status_code == 404
    assert storage.list_keys(f"jobs/{job_id}/") == []
    assert redis_keys_of(jobs, job_id) == []


def test_expired_job_loses_its_objects_and_frees_its_slot(stack, jobs, storage, settings) -> None:
    key, record = KeyStore(jobs.redis).create("one-at-a-time", 10_000, 500, 1)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=stack["CHORUS_API_URL"], headers=headers, timeout=30) as client:
        finished = wait_for(client, submit(client, "A book that will be forgotten.", voice="tone", format="wav"))
        assert finished["state"] == "done" and storage.list_keys(f"jobs/{finished['id']}/")
        # A job in flight holds the key's only slot ...
        running = submit(client, " ".join(f"Line {n} will dawdle." for n in range(6)), voice="tone")
        assert client.post("/v1/jobs", json={"text": "No room.", "voice": "tone"}).status_code == 429
        # ... until both records expire (their time shortened here; Redis deletes the hash).
        for job_id in (finished["id"], running):
            jobs.redis.zadd(jobs.EXPIRY, {job_id: time.time() - 1})
            jobs.redis.delete(f"chorus:job:{job_id}")
        report = backstage.run_watchdog(settings)
        assert report["swept"] >= 2
        for job_id in (finished["id"], running):
            assert storage.list_keys(f"jobs/{job_id}/") == []
            assert client.get(f"/v1/jobs/{job_id}").status_code == 404
        assert jobs.active_jobs(record.id) == 0
        again = client.post("/v1/jobs", json={"text": "Room again.", "voice": "tone"})
        assert again.status_code == 202, again.text
        assert wait_for(client, again.json()["id"])["state"] == "done"
    # Segments of the forgotten job that were in flight found no job and did nothing.
    jobs_worker_idle(settings)
    assert storage.list_keys(f"jobs/{running}/") == []


def test_abandoned_multipart_uploads_are_aborted(storage, settings) -> None:
    key = "jobs/0123456789abcdef0123456789abcdef/audiobook.wav"
    upload = storage.s3.create_multipart_upload(Bucket=storage.bucket, Key=key)
    storage.s3.upload_part(Bucket=storage.bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"x" * 1024)
    try:
        assert [u["Key"] for u in storage.uploads_in_progress("jobs/")] == [key]
        # The watchdog leaves an upload begun less than abandoned_upload_s ago alone ...
        report = backstage.run_watchdog(settings)
        assert report["uploads_aborted"] == 0 and storage.uploads_in_progress("jobs/")
    finally:
        # ... and aborts it once it is older; here, older than nothing.
        assert storage.abort_uploads("jobs/", older_than_s=0) == 1
    assert storage.uploads_in_progress("jobs/") == []


def test_no_task_results_are_kept(api: httpx.Client, settings) -> None:
    """The chord reads its header's results from its own list, so no task
    stores a result of its own, and no process stays subscribed to a result
    channel."""
    client = redis.Redis.from_url(settings.redis_url)

    def results() -> set[bytes]:
        return set(client.scan_iter("celery-task-meta-*", count=1000))

    before = results()
    text = "\n\n".join(f"Chapter {p}\n\n" + " ".join(f"Result {p}.{n} kept or not." for n in range(3)) for p in (1, 2))
    status = wait_for(api, submit(api, text, voice="tone", format="wav"))
    assert status["state"] == "done", status["error"]
    assert [c["ready"] for c in status["chapters"]] == [True, True]  # chapter renders ran too
    time.sleep(1)  # memory releases have run
    new = results() - before
    synthesised = status["segments_total"] - status["cache_hits"]  # headings may be cached already
    assert synthesised >= 6 and new == set()
    assert client.pubsub_channels("celery-task-meta-*") == []
