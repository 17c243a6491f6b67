"""A read-along EPUB made by the whole stack with the real Piper voice: an
EPUB upload keeps its pages with the sentences marked, a text becomes pages
of its own; both pass EPUBCheck and their overlays end with their audio."""

from __future__ import annotations

import io
import posixpath
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.readalong_books import epubcheck
from tests.test_readalong import SMIL, TEXT, audio_seconds, chaptered_epub, overlays_of, seconds

pytestmark = pytest.mark.stack


def finished(api: httpx.Client, response: httpx.Response) -> tuple[dict, bytes]:
    assert response.status_code == 202, response.text
    status = wait_for(api, response.json()["id"], timeout=240)
    assert status["state"] == "done", status["error"]
    download = httpx.get(status["result_url"], timeout=60)
    assert download.headers["content-type"] == "application/epub+zip"
    return status, download.content


def check_overlays(archive: zipfile.ZipFile) -> int:
    """Every overlay's clips in order and its last one ending with its audio; the number of <par>s."""
    pars = 0
    for smil_path, smil in overlays_of(archive).items():
        clips = smil.findall(f".//{SMIL}audio")
        pars += len(clips)
        audio = posixpath.normpath(posixpath.join(posixpath.dirname(smil_path), clips[-1].get("src")))
        assert abs(seconds(clips[-1].get("clipEnd")) - audio_seconds(archive.read(audio))) < 0.050
    return pars


def test_an_epub_upload_becomes_a_read_along_epub(api: httpx.Client, tmp_path: Path) -> None:
    response = api.post("/v1/jobs", files={"file": ("lantern.epub", chaptered_epub(), "application/epub+zip")},
                        data={"voice": "joe", "format": "epub"})
    status, data = finished(api, response)
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    assert manifest["format"] == "epub" and len(manifest["chapters"]) == 2
    # The chapters' files in the status are the book's audio: AAC in MP4.
    chapter = httpx.get(status["chapters"][0]["url"], timeout=60)
    assert chapter.headers["content-type"] == "audio/mp4" and audio_seconds(chapter.content) > 1
    path = tmp_path / "lantern.epub"
    path.write_bytes(data)
    assert epubcheck(path) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("EPUB/images/lamp.png")  # the book's own files are kept
        page = archive.read("EPUB/chapter1.xhtml").decode()
        pars = check_overlays(archive)
    assert 'id="chorus-s' in page
    # Every sentence on a page is played; the title read from metadata is not on any.
    assert pars == len(manifest["segments"]) - 1


def test_a_text_becomes_a_read_along_epub(api: httpx.Client, tmp_path: Path) -> None:
    response = api.post("/v1/jobs", json={"text": TEXT, "voice": "joe", "format": "epub", "title": "The Lantern"})
    status, data = finished(api, response)
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    path = tmp_path / "lantern.epub"
    path.write_bytes(data)
    assert epubcheck(path) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert check_overlays(archive) == len(manifest["segments"])
        assert len([n for n in archive.namelist() if n.endswith(".m4a")]) == len(manifest["chapters"])


def test_a_one_chapter_text_becomes_a_read_along_epub(api: httpx.Client, tmp_path: Path) -> None:
    """A book of one chapter has no chapter files: its audio is the book's."""
    response = api.post("/v1/jobs", json={"text": "The lamp was lit. The keeper slept.", "voice": "joe",
                                          "format": "epub"})
    status, data = finished(api, response)
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    path = tmp_path / "short.epub"
    path.write_bytes(data)
    assert epubcheck(path) == []
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert check_overlays(archive) == len(manifest["segments"]) == 2
