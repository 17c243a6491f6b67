"""Word timings in a real book: the opening paragraphs of a corpus book's
first chapter read by the real Piper voice through the whole stack, to a
lossless file. The pauses between sentences are heard where the manifest
says (within 20 ms), and the audio at the words' edges is quieter than
inside their sentences."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from chorus.tasks.audio import timings
from tests.conftest import wait_for

pytestmark = [pytest.mark.stack, pytest.mark.timeout(300)]

PAUSE_TOLERANCE_S = 0.020
PARAGRAPHS = 8


def opening(corpus: Path, paragraphs: int = PARAGRAPHS) -> str:
    """The first paragraphs of Pride and Prejudice's first chapter, as printed
    (its illustration tags left out)."""
    book = (corpus / "pride_and_prejudice.txt").read_bytes().decode("cp1252")
    body = book[re.search(r"^Chapter I\.\]\s*$", book, re.M).end():]
    kept = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip() and not p.lstrip().startswith("[")]
    return "\n\n".join(kept[:paragraphs])


@pytest.fixture(scope="module")
def book(corpus: Path, api: httpx.Client) -> tuple[np.ndarray, int, list[dict]]:
    """The decoded FLAC book and its manifest's entries."""
    accepted = api.post("/v1/jobs", json={"text": opening(corpus), "voice": "joe", "format": "flac"})
    assert accepted.status_code == 202, accepted.text
    status = wait_for(api, accepted.json()["id"], timeout=240)
    assert status["state"] == "done", status
    samples, rate = sf.read(io.BytesIO(httpx.get(status["result_url"], timeout=60).content), dtype="float32")
    entries = api.get(f"/v1/jobs/{status['id']}/manifest").json()["segments"]
    return samples, rate, entries


def test_pauses_between_sentences_are_heard_where_the_manifest_says(book) -> None:
    samples, rate, entries = book
    assert len(entries) >= 6
    offsets = timings.pause_offsets(entries, timings.silent_gaps(samples, rate))
    late = [(entries[k]["text"][-30:], round(offset, 4)) for k, offset in enumerate(offsets)
            if offset > PAUSE_TOLERANCE_S]
    assert not late, late


def test_word_edges_in_the_book_are_quieter_than_their_sentences(book) -> None:
    samples, rate, entries = book
    timed = [e for e in entries if e["timing"] == "word"]
    assert len(timed) == len(entries), [e.get("timing_reason") for e in entries if e["timing"] != "word"]
    quieter = 0
    for entry in timed:
        sentence = samples[round(entry["start"] * rate) : round(entry["end"] * rate)].astype(np.float64)
        spans = [[w["start"] - entry["start"], w["end"] - entry["start"]] for w in entry["words"]]
        quieter += timings.edge_energy(sentence, rate, spans) < float(np.mean(sentence**2))
    assert quieter >= 0.9 * len(timed), (quieter, len(timed))
