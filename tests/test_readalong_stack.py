"""Read-along EPUBs made by the whole stack with the real Piper voice (word
timings) from each input: TXT, Markdown, EPUB (its own pages, sentences and
words marked in place) and PDF. Each passes EPUBCheck, its pages carry word
ids and its overlays word clips, each overlay ends with its audio, and the
clips line up with the chapter files (a later chapter's file starts with the
chapter pause; all but the last end padded to a whole AAC frame)."""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from tests.conftest import wait_for
from tests.readalong_books import epubcheck
from tests.test_readalong import INPUTS, SMIL, audio_seconds, overlays_of, seconds

pytestmark = pytest.mark.stack

EPUB_NS = "{http://www.idpf.org/2007/ops}"
UPLOAD_TYPES = {"txt": "text/plain", "markdown": "text/markdown", "pdf": "application/pdf",
                "epub": "application/epub+zip"}


def finished(api: httpx.Client, job_id: str) -> tuple[dict, dict, bytes]:
    """The job's status, manifest and EPUB once it is done."""
    status = wait_for(api, job_id, timeout=400)
    assert status["state"] == "done", status["error"]
    download = httpx.get(status["result_url"], timeout=60)
    assert download.headers["content-type"] == "application/epub+zip"
    return status, httpx.get(status["manifest_url"], timeout=60).json(), download.content


@pytest.fixture(scope="module")
def books(api: httpx.Client) -> dict[str, tuple[dict, dict, bytes]]:
    """A read-along book from each input, all submitted before any is waited for."""
    jobs = {}
    for kind, make in INPUTS.items():
        data, filename = make()
        response = api.post("/v1/jobs", files={"file": (filename, data, UPLOAD_TYPES[kind])},
                            data={"voice": "joe", "format": "epub"})
        assert response.status_code == 202, response.text
        jobs[kind] = response.json()["id"]
    return {kind: finished(api, job_id) for kind, job_id in jobs.items()}


def decoded(data: bytes) -> tuple[np.ndarray, int]:
    """A chapter file's samples (mono) and rate."""
    with av.open(io.BytesIO(data)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    return np.concatenate([f.reshape(-1) if f.shape[0] == 1 else f[0] for f in frames]), rate


def rms(samples: np.ndarray, rate: int, begin: float, end: float) -> float:
    part = samples[max(0, round(begin * rate)): round(end * rate)]
    return float(np.sqrt(np.mean(np.square(part.astype(np.float64))))) if part.size else 0.0


def check_overlays(archive: zipfile.ZipFile) -> dict[str, int]:
    """Each overlay: clips in order and contiguous, its last one ending with
    its audio, each sentence starting after silence (the pause before it)
    and sounding at once. Each sentence <seq>'s fragment and its number of
    word <par>s (a sentence timed by sentence: 0)."""
    sentences: dict[str, int] = {}
    for smil_path, smil in overlays_of(archive).items():
        clips = smil.findall(f".//{SMIL}audio")
        audio = posixpath.normpath(posixpath.join(posixpath.dirname(smil_path), clips[-1].get("src")))
        assert abs(seconds(clips[-1].get("clipEnd")) - audio_seconds(archive.read(audio))) < 0.050
        begins, ends = [seconds(c.get("clipBegin")) for c in clips], [seconds(c.get("clipEnd")) for c in clips]
        assert all(b < e for b, e in zip(begins, ends)) and ends[:-1] == begins[1:]
        samples, rate = decoded(archive.read(audio))
        loud = np.sqrt(np.mean(np.square(samples.astype(np.float64))))
        for element in smil.find(f"{SMIL}body"):
            sentence = element.get(f"{EPUB_NS}textref") or element.find(f"{SMIL}text").get("src")
            start = seconds(element.find(f".//{SMIL}audio").get("clipBegin"))
            if start > 0.2:  # a lead-in or a pause before it: silent; the sentence itself is heard
                assert rms(samples, rate, start - 0.15, start - 0.03) < 0.1 * loud, (smil_path, start)
            assert rms(samples, rate, start, start + 0.4) > 0.1 * loud, (smil_path, start)
            sentences[sentence.partition("#")[2]] = len(element.findall(f"{SMIL}par"))
    return sentences


@pytest.mark.parametrize("kind", list(INPUTS))
def test_a_piper_book_from_each_input_becomes_a_word_timed_read_along_epub(
        books: dict[str, tuple[dict, dict, bytes]], kind: str, tmp_path: Path) -> None:
    status, manifest, data = books[kind]
    assert manifest["format"] == "epub" and len(manifest["chapters"]) >= 2
    timed = [s for s in manifest["segments"] if s.get("timing") == "word"]
    assert timed, "Piper gives word timings"
    path = tmp_path / f"{kind}.epub"
    path.write_bytes(data)
    assert epubcheck(path) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        audio = sorted(n for n in archive.namelist() if n.endswith(".m4a"))
        pages = "".join(archive.read(n).decode() for n in archive.namelist() if n.endswith(".xhtml"))
        sentences = check_overlays(archive)
        # The chapters' files are the book's audio, end to end, as the manifest times them.
        lengths = [audio_seconds(archive.read(name)) for name in audio]
    assert len(lengths) == len(manifest["chapters"])
    for chapter, length in zip(manifest["chapters"], lengths):
        assert abs((chapter["end"] - chapter["start"]) - length) < 0.005
    assert abs(sum(lengths) - manifest["duration_seconds"]) < 0.010
    # Every word-timed sentence on a page plays word by word: a <par> per word
    # (in an EPUB's own pages, per word found there).
    prefix = "chorus-s" if kind == "epub" else "s"
    shown = [s for s in timed if f"{prefix}{s['index']}" in sentences]
    assert len(shown) >= len(timed) - 1  # an EPUB's title, read from its metadata, is on no page
    for segment in shown:
        assert f'id="{prefix}{segment["index"]}w0"' in pages
        played = sentences[f"{prefix}{segment['index']}"]
        if kind == "epub":
            assert 1 <= played <= len(segment["words"])
        else:
            assert played == len(segment["words"])
    if kind == "epub":  # the book's own files are kept
        assert "lamp.png" in pages


def test_an_epub_upload_lists_its_chapter_files_as_audio(books: dict[str, tuple[dict, dict, bytes]]) -> None:
    status, _, _ = books["epub"]
    chapter = httpx.get(status["chapters"][0]["url"], timeout=60)
    assert chapter.headers["content-type"] == "audio/mp4" and audio_seconds(chapter.content) > 1


def test_a_one_chapter_text_becomes_a_read_along_epub(api: httpx.Client, tmp_path: Path) -> None:
    response = api.post("/v1/jobs", json={"text": "The lamp was lit. The keeper slept.", "voice": "joe",
                                          "format": "epub"})
    assert response.status_code == 202, response.text
    _, manifest, data = finished(api, response.json()["id"])
    path = tmp_path / "short.epub"
    path.write_bytes(data)
    assert epubcheck(path) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert len(check_overlays(archive)) == len(manifest["segments"]) == 2
