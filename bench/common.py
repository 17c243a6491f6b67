"""Shared pieces of the benchmarks: the sample text and one job over HTTP."""

from __future__ import annotations

import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = Path(os.environ.get("CHORUS_BENCH_CORPUS", ROOT.parent / "shared" / "corpus"))


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")  # the corpus's Pride and Prejudice is Windows-1252


def chapter(book: str, numeral: str) -> str:
    """One chapter of a Gutenberg-style book, without its illustration tags."""
    heads = list(re.finditer(r"^\s*\[?chapter\s+([ivxlc]+)\.\]?\s*$", book, re.I | re.M))
    for number, head in enumerate(heads):
        if head.group(1).upper() == numeral.upper():
            end = heads[number + 1].start() if number + 1 < len(heads) else len(book)
            body = book[head.end() : end]
            return re.sub(r"^\[Illustration[^\]]*\]\s*$", "", body, flags=re.M).strip()
    raise SystemExit(f"chapter {numeral} not found")


def sample_text(path: Path | None, numeral: str = "III") -> tuple[str, str]:
    """(text, where it came from): a file, else a chapter of Pride and Prejudice
    from the shared corpus, else the project's example."""
    book = CORPUS / "pride_and_prejudice.txt"
    if path:
        return read_text(path), str(path)
    if book.exists():
        return chapter(read_text(book), numeral), f"Pride and Prejudice, chapter {numeral}"
    return read_text(ROOT / "examples" / "the-lighthouse-keeper.txt"), "examples/the-lighthouse-keeper.txt"


def run_job(env: dict[str, str], body: str, audio_format: str, voice: str = "joe",
            poll_s: float = 0.5) -> tuple[float, dict]:
    """POST a job to the stack and poll it to the end: (seconds from the POST
    to the job's own ``finished_at``, final status). Timed by the job's
    timestamp, not by the poll that saw it, so polling can be as slow as a
    real client's: polls every 50 ms cost the API and Redis CPU that the
    workers on the same cores then lacked (about 4 s in 50 on two cores)."""
    api, headers = env["CHORUS_API_URL"], {"Authorization": f"Bearer {env['CHORUS_API_KEY']}"}
    posted = time.time()
    job = httpx.post(f"{api}/v1/jobs", json={"text": body, "voice": voice, "format": audio_format}, timeout=60, headers=headers).json()
    while True:
        status = httpx.get(f"{api}/v1/jobs/{job['id']}", timeout=30, headers=headers).json()
        if status["state"] in ("done", "failed", "cancelled"):
            break
        time.sleep(poll_s)
    if status["state"] != "done":
        raise SystemExit(f"job {status['state']}: {status['error']}")
    return datetime.fromisoformat(status["finished_at"]).timestamp() - posted, status
