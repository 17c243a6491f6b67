"""POST /v1/batches on the real stack: one job per book, polled together;
taken whole or refused whole (a bad book, no room under the key's limit)."""

from __future__ import annotations

import time

import httpx
import pytest

from chorus.tasks.state.keys import KeyStore

pytestmark = pytest.mark.timeout(180)


def key_client(stack: dict[str, str], key: str) -> httpx.Client:
    return httpx.Client(base_url=stack["CHORUS_API_URL"], timeout=30, headers={"Authorization": f"Bearer {key}"})


def owned_jobs(jobs, owner: str) -> set[str]:
    return {job.decode() for job, who in jobs.redis.hgetall("chorus:jobs:owners").items() if who.decode() == owner}


def wait_for_batch(client: httpx.Client, url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(url).json()
        if status["finished"]:
            return status
        time.sleep(0.25)
    raise AssertionError(f"batch not finished after {timeout} s: {status}")


BOOKS = [
    ("one.txt", b"The first book. It is short.", "text/plain"),
    ("two.md", b"# Two\n\nThe second book, in *Markdown*.\n", "text/markdown"),
    ("three.txt", "Caf\xe9 au lait, in Windows-1252.".encode("cp1252"), "text/plain"),
]


def test_a_batch_makes_one_job_per_book(stack, jobs) -> None:
    key, _ = KeyStore(jobs.redis).create("batch-reader", 10_000, 100, 5)
    with key_client(stack, key) as client:
        response = client.post("/v1/batches", data={"voice": "tone", "format": "wav"},
                               files=[("file", book) for book in BOOKS])
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert len(accepted["jobs"]) == 3 and response.headers["location"] == accepted["status_url"]
        status = wait_for_batch(client, accepted["status_url"])
        assert status["counts"] == {"done": 3}, status["counts"]
        assert [job["filename"] for job in status["jobs"]] == [name for name, _, _ in BOOKS]
        assert [job["id"] for job in status["jobs"]] == [job["id"] for job in accepted["jobs"]]
        assert {job["status"]["title"] for job in status["jobs"]} == {"one", "Two", "three"}
        assert all(job["status"]["format"] == "wav" and job["status"]["result_url"] for job in status["jobs"])

        # A deleted job shows as gone; the others are untouched.
        assert client.delete(f"/v1/jobs/{accepted['jobs'][0]['id']}").status_code == 204
        counts = client.get(accepted["status_url"]).json()["counts"]
        assert counts == {"gone": 1, "done": 2}

    # Nobody else sees the batch.
    other, _ = KeyStore(jobs.redis).create("batch-stranger", 10_000, 100, 5)
    with key_client(stack, other) as stranger:
        assert stranger.get(f"/v1/batches/{accepted['id']}").status_code == 404


def test_one_bad_book_refuses_the_batch_and_enqueues_nothing(stack, jobs) -> None:
    key, record = KeyStore(jobs.redis).create("batch-bad-book", 10_000, 100, 5)
    with key_client(stack, key) as client:
        books = [BOOKS[0], ("broken.epub", b"PK\x03\x04 not really a zip", "application/epub+zip"), BOOKS[1]]
        response = client.post("/v1/batches", data={"voice": "tone"}, files=[("file", book) for book in books])
        assert response.status_code in (415, 422), response.text
        assert "book 2 (broken.epub)" in response.json()["detail"]
        # A book too long for the key, and a voice that does not exist.
        response = client.post("/v1/batches", data={"voice": "tone"},
                               files=[("file", BOOKS[0]), ("file", ("long.txt", b"word " * 3000, "text/plain"))])
        assert response.status_code == 413 and "book 2 (long.txt)" in response.json()["detail"]
        response = client.post("/v1/batches", data={"voice": "nobody"}, files=[("file", BOOKS[0])])
        assert response.status_code == 422 and "unknown voice" in response.json()["detail"]
    assert owned_jobs(jobs, record.id) == set()


def test_a_batch_over_the_concurrency_limit_is_refused_whole(stack, jobs) -> None:
    key, record = KeyStore(jobs.redis).create("batch-small", 10_000, 100, 2)
    with key_client(stack, key) as client:
        response = client.post("/v1/batches", data={"voice": "tone"}, files=[("file", book) for book in BOOKS])
        assert response.status_code == 429, response.text
        assert "a batch of 3 books does not fit" in response.json()["detail"]
        assert owned_jobs(jobs, record.id) == set()
        # Two fit.
        response = client.post("/v1/batches", data={"voice": "tone"}, files=[("file", book) for book in BOOKS[:2]])
        assert response.status_code == 202, response.text
        assert wait_for_batch(client, response.json()["status_url"])["counts"] == {"done": 2}


def test_a_batch_wants_multipart_files(api: httpx.Client) -> None:
    assert api.post("/v1/batches", json={"text": "no"}).status_code == 415
    response = api.post("/v1/batches", data={"voice": "tone"}, files=[("other", BOOKS[0])])
    assert response.status_code in (400, 422)
    assert api.get("/v1/batches/" + "0" * 32).status_code == 404
    assert api.get("/v1/batches/not-an-id").status_code == 404
