"""Every book in, nothing frozen: the failures a new user met, each reproduced
against the running API.

- a body of blank lines froze the API (and /healthz) for 23 to 50 s;
- a body over the limit reached urllib as "connection reset", not a 413, and
  a chunked body was read whole before it was refused;
- Gutenberg-style Windows-1252 files and GB18030 Chinese text were refused;
- a JSON text with control characters was accepted, then failed in the split;
- the segment limit did not count chapter titles;
- the concurrency limit was a check, then a write (two requests could pass it).
"""

from __future__ import annotations

import concurrent.futures
import io
import socket
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import MAX_REQUEST_BYTES, submit, wait_for

pytestmark = pytest.mark.stack


def _post_with_urllib(url: str, key: str, body: bytes, content_type: str = "application/json",
                      path: str = "/v1/jobs") -> tuple[int, str]:
    """urllib sends the whole body before it reads a byte of the answer."""
    request = urllib.request.Request(
        f"{url}{path}", data=body, method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_oversized_body_is_a_readable_413_for_a_client_that_sends_it_all(stack: dict[str, str]) -> None:
    body = b'{"text": "' + b"word " * (MAX_REQUEST_BYTES // 5 + 1000) + b'"}'
    code, answer = _post_with_urllib(stack["CHORUS_API_URL"], stack["CHORUS_API_KEY"], body)
    assert code == 413
    assert str(MAX_REQUEST_BYTES) in answer


def _multipart(files: dict, data: dict) -> tuple[bytes, str]:
    """A multipart body as a browser would send it (encoded by httpx, sent by urllib)."""
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.read(), request.headers["content-type"]


def test_oversized_upload_is_a_readable_413_for_a_client_that_sends_it_all(stack: dict[str, str]) -> None:
    book = b"A line of a very long book.\n" * (MAX_REQUEST_BYTES // 28 + 1000)
    body, content_type = _multipart({"file": ("long.txt", book, "text/plain")}, {"voice": "tone"})
    code, answer = _post_with_urllib(stack["CHORUS_API_URL"], stack["CHORUS_API_KEY"], body, content_type)
    assert code == 413 and str(MAX_REQUEST_BYTES) in answer


def test_oversized_voice_clip_is_a_readable_413(stack: dict[str, str]) -> None:
    from chorus.api.routes.voices import UPLOAD_MAX_BYTES

    form = {"transcript": "Hello, this is my voice.", "name": "Huge", "model": "tone"}
    body, content_type = _multipart({"audio": ("huge.wav", b"\0" * (UPLOAD_MAX_BYTES + 1), "audio/wav")}, form)
    code, answer = _post_with_urllib(stack["CHORUS_API_URL"], stack["CHORUS_API_KEY"], body, content_type, "/v1/voices")
    assert code == 413 and str(UPLOAD_MAX_BYTES) in answer


def test_chunked_body_is_cut_off_at_the_limit(stack: dict[str, str], api: httpx.Client) -> None:
    sent = 0

    def chunks():  # no Content-Length: the server only learns the size by counting
        nonlocal sent
        yield b'{"text": "'
        for _ in range(4 * MAX_REQUEST_BYTES // 65536):
            sent += 65536
            yield b"word " * 13107 + b" "
        yield b'"}'

    response = api.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413


def _raw_request(url: str, head: str) -> bytes:
    """Send only a request's head, then read what the server answers."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = conn.recv(4096)
            if not data:
                break
            answer += data
        return answer


def test_declared_length_over_the_limit_is_refused_before_the_body(stack: dict[str, str]) -> None:
    url, key = stack["CHORUS_API_URL"], stack["CHORUS_API_KEY"]
    for extra in ("Expect: 100-continue\r\n", ""):  # with or without asking first
        head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {10 * 1024**3}\r\n{extra}\r\n")
        started = time.monotonic()
        answer = _raw_request(url, head)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert time.monotonic() - started < 5


def _time_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.monotonic()
            client.get(f"{url}/healthz")
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)


@pytest.mark.parametrize("text", [
    " \n" * 60_000 + "a",  # 120 KB of blank lines: froze the API for 50 s
    ". " * 250_000 + "The end.",  # a run of dots
    "a\u0301" * 250_000,  # combining marks
    "x" * 200_000,  # one 200,000-letter word
    "word " * 199_000,  # no punctuation at all
    "".join(f"Chapter {n}\n\nLine {n}.\n\n" for n in range(1, 30_001))[:990_000],  # 30,000 tiny chapters
], ids=["blank-lines", "dot-run", "combining-marks", "long-word", "no-punctuation", "tiny-chapters"])
def test_health_answers_while_an_adversarial_book_is_submitted(stack: dict[str, str], api: httpx.Client, text: str) -> None:
    stop, latencies = threading.Event(), []
    prober = threading.Thread(target=_time_health, args=(stack["CHORUS_API_URL"], stop, latencies))
    prober.start()
    try:
        while not latencies:  # the prober is answered before the book is sent
            time.sleep(0.01)
        started = time.monotonic()
        response = api.post("/v1/jobs", json={"text": text, "voice": "tone"})
        took = time.monotonic() - started
        probed = len(latencies)
        while len(latencies) < probed + 2:  # and twice more after it was answered
            time.sleep(0.01)
    finally:
        stop.set()
        prober.join()
    assert response.status_code in (202, 413, 422), response.text
    assert took < 10
    assert max(latencies) < 1.0, f"/healthz took up to {max(latencies):.2f} s"
    if response.status_code == 202:
        api.delete(f"/v1/jobs/{response.json()['id']}")


def _upload(api: httpx.Client, name: str, data: bytes, **fields: str) -> httpx.Response:
    return api.post("/v1/jobs", files={"file": (name, data, "text/plain")}, data=fields)


WINDOWS_1252 = ("The Keeper\u2019s Log\r\n\r\nChapter 1\r\n\r\n\u201cNa\u00efve,\u201d said the caf\u00e9 owner, "
                "\u2014 and left.\r\n\r\nChapter 2\r\n\r\nThe lamp burned till dawn.\r\n")


def test_windows_1252_with_crlf_is_read(api: httpx.Client) -> None:
    response = _upload(api, "keeper.txt", WINDOWS_1252.encode("cp1252"), voice="tone", format="wav")
    assert response.status_code == 202, response.text
    status = wait_for(api, response.json()["id"])
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"], timeout=30).json()
    spoken = " ".join(s["text"] for s in manifest["segments"])
    assert "\u201cNa\u00efve,\u201d said the caf\u00e9 owner" in spoken
    assert [c["title"] for c in manifest["chapters"]][-2:] == ["Chapter 1", "Chapter 2"]


@pytest.mark.parametrize("book", ["pride_and_prejudice.txt", "frankenstein.txt"])
def test_gutenberg_books_are_accepted_by_upload(corpus: Path, api: httpx.Client, book: str) -> None:
    response = _upload(api, book, (corpus / book).read_bytes(), voice="tone", format="wav")
    assert response.status_code == 202, response.text
    status = api.get(f"/v1/jobs/{response.json()['id']}").json()
    assert status["segments_total"] > 1000 and len(status["chapters"]) > 20
    assert api.delete(f"/v1/jobs/{status['id']}").status_code == 200


def test_gb18030_chinese_is_read(api: httpx.Client) -> None:
    text = "第一回\n\n孙悟空大闹天宫。玉帝大怒，派天兵天将捉拿他。\n\n第二回\n\n唐僧西天取经，一路上降妖除魔。\n"
    response = _upload(api, "xiyouji.txt", text.encode("gb18030"), voice="tone-zh", format="wav")
    assert response.status_code == 202, response.text
    status = wait_for(api, response.json()["id"])
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"], timeout=30).json()
    assert "孙悟空大闹天宫。" in [s["text"] for s in manifest["segments"]]


def test_binary_upload_is_415_naming_the_file(api: httpx.Client) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
    response = _upload(api, "cover.png", png)
    assert response.status_code == 415
    assert "cover.png" in response.json()["detail"]


def test_control_characters_in_json_text_are_removed_not_fatal(api: httpx.Client) -> None:
    text = "Bell\x07 and NUL\x00 here.\u202e Reversed?\u200b Zero\u2066width.\x1b[31m Done."
    job_id = submit(api, text, voice="tone", format="wav")
    status = wait_for(api, job_id)
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"], timeout=30).json()
    said = "".join(s["text"] for s in manifest["segments"])
    assert not any(ch in said for ch in "\x07\x00\u202e\u200b\u2066\x1b")


def test_segment_limit_counts_the_plan_with_its_titles(stack: dict[str, str], jobs) -> None:
    from tests.test_access import client_for

    book = "Chapter 1\n\nOne line.\n\nChapter 2\n\nTwo lines."  # 4 segments: 2 titles, 2 sentences
    with client_for(stack, jobs, "four", max_segments=4) as four:
        accepted = four.post("/v1/jobs", json={"text": book, "voice": "tone"})
        assert accepted.status_code == 202, accepted.text
        assert four.get(f"/v1/jobs/{accepted.json()['id']}").json()["segments_total"] == 4
    with client_for(stack, jobs, "three", max_segments=3) as three:
        refused = three.post("/v1/jobs", json={"text": book, "voice": "tone"})
        assert refused.status_code == 413 and "makes at least 4 segments" in refused.json()["detail"]
    longer = "Chapter 1\n\nOne line. And another.\n\nChapter 2\n\nTwo lines."  # 5: counted on the plan
    with client_for(stack, jobs, "four-again", max_segments=4) as four:
        refused = four.post("/v1/jobs", json={"text": longer, "voice": "tone"})
        assert refused.status_code == 413 and "makes 5 segments" in refused.json()["detail"]


def test_concurrency_limit_holds_under_parallel_submissions(stack: dict[str, str], jobs) -> None:
    from tests.test_access import client_for

    with client_for(stack, jobs, "parallel", max_concurrent_jobs=3) as client:
        def one(n: int) -> int:
            return client.post("/v1/jobs", json={"text": f"Job {n} will dawdle a while.", "voice": "tone"}).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(one, range(16)))
        assert codes.count(202) == 3 and codes.count(429) == 13, codes


def test_epub_bomb_is_refused_before_it_is_inflated(api: httpx.Client) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        entry = zipfile.ZipInfo("OEBPS/chapter.xhtml")
        entry.compress_type = zipfile.ZIP_DEFLATED
        with book.open(entry, "w", force_zip64=True) as chapter:  # 400 MB of spaces, about 400 KB deflated
            for _ in range(400):
                chapter.write(b" " * (1024 * 1024))
    started = time.monotonic()
    response = api.post("/v1/jobs", files={"file": ("bomb.epub", buffer.getvalue(), "application/epub+zip")})
    assert response.status_code == 413, response.text
    assert time.monotonic() - started < 5


def test_voice_clip_longer_than_its_header_allows_is_refused_undecoded(api: httpx.Client) -> None:
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()  # an hour of silence: a few KiB of FLAC, 300 MB decoded
    with sf.SoundFile(buffer, "w", samplerate=44100, channels=1, format="FLAC") as out:
        block = np.zeros(44100 * 60, dtype=np.float32)
        for _ in range(60):
            out.write(block)
    assert len(buffer.getvalue()) < 2 * 1024 * 1024
    form = {"transcript": "Hello, this is my voice.", "name": "Long", "model": "tone"}
    started = time.monotonic()
    response = api.post("/v1/voices", files={"audio": ("long.flac", buffer.getvalue(), "audio/flac")}, data=form)
    assert response.status_code == 422 and "must last" in response.json()["detail"]
    assert time.monotonic() - started < 5
