"""Audiobook-grade output from real files: an EPUB in, a chaptered M4B with
steady loudness and subtitles out; chapters downloadable as they finish; the
segment cache synthesising only what changed."""

from __future__ import annotations

import io
import time

import httpx
import numpy as np
import pyloudnorm
import pytest
import srt
import webvtt

from tests.conftest import submit, wait_for

pytestmark = pytest.mark.stack

CHAPTERS = [
    ("The Harbour", ["The boats came in at dawn.", "Nobody on the quay said a word, and the gulls were quiet too."]),
    ("The Storm", ["By noon the sky had turned the colour of slate.", "Rain fell for 3 hours without a pause."]),
    ("The Return", ["When it cleared, the lighthouse keeper walked down to the water.", "He counted the boats twice."]),
]


def build_epub() -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("chorus-test-harbour")
    book.set_title("A Day at the Harbour")
    book.set_language("en")
    book.add_author("Ada Test")
    items = []
    for number, (title, paragraphs) in enumerate(CHAPTERS, start=1):
        item = epub.EpubHtml(title=title, file_name=f"chapter{number}.xhtml", lang="en")
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        item.content = f"<html><body><h1>{title}</h1>{body}<p>Note<sup><a epub:type='noteref' href='#n{number}'>{number}</a></sup>.</p>" \
                       f"<aside epub:type='footnote' id='n{number}'><p>A footnote nobody should hear.</p></aside></body></html>"
        book.add_item(item)
        items.append(item)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    buffer = io.BytesIO()
    epub.write_epub(buffer, book)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int, list]:
    import av

    with av.open(io.BytesIO(data)) as container:
        chapters = list(container.chapters()) if hasattr(container, "chapters") else []
        stream = container.streams.audio[0]
        rate = stream.rate
        samples = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(stream)])
    return samples.astype(np.float32), rate, chapters


@pytest.fixture(scope="module")
def epub_job(api: httpx.Client) -> dict:
    response = api.post("/v1/jobs", files={"file": ("harbour.epub", build_epub(), "application/epub+zip")},
                        data={"voice": "joe", "format": "m4b"})
    assert response.status_code == 202, response.text
    status = wait_for(api, response.json()["id"], timeout=180)
    assert status["state"] == "done", status["error"]
    return status


def test_epub_to_chaptered_m4b(epub_job: dict) -> None:
    assert epub_job["title"] == "A Day at the Harbour" and epub_job["author"] == "Ada Test"
    assert [c["title"] for c in epub_job["chapters"]] == [title for title, _ in CHAPTERS]
    assert all(c["ready"] and c["url"] for c in epub_job["chapters"])
    assert set(epub_job["artefacts"]) == {"audio", "manifest", "srt", "vtt", "words"}

    samples, rate, chapters = decode(httpx.get(epub_job["result_url"], timeout=60).content)
    manifest = httpx.get(epub_job["manifest_url"], timeout=60).json()
    assert [c.get("metadata", {}).get("title") for c in chapters] == [title for title, _ in CHAPTERS]
    starts = [float(c["start"] * c["time_base"]) for c in chapters]
    assert starts == pytest.approx([c["start"] for c in manifest["chapters"]], abs=0.05)
    assert abs(len(samples) / rate - manifest["duration_seconds"]) < 0.1
    spoken = " ".join(s["text"] for s in manifest["segments"])
    assert "footnote" not in spoken and "The Storm" in spoken and "A Day at the Harbour" in spoken


def test_loudness_on_target_and_peak_under_ceiling(epub_job: dict) -> None:
    samples, rate, _ = decode(httpx.get(epub_job["result_url"], timeout=60).content)
    loudness = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    assert loudness == pytest.approx(-18.0, abs=1.0)
    manifest = httpx.get(epub_job["manifest_url"], timeout=60).json()
    assert manifest["loudness_lufs"] == pytest.approx(-18.0, abs=1.0)
    assert manifest["true_peak_dbfs"] <= -3.0 + 0.1
    assert 20 * np.log10(np.abs(samples).max()) <= -3.0 + 0.5


def test_no_click_at_any_join(api: httpx.Client) -> None:
    status = wait_for(api, submit(api, "One. Two words. Three more words here.\n\nA new paragraph starts.", voice="joe", format="wav"))
    from chorus.tasks.audio.formats import read_audio

    samples, rate = read_audio(httpx.get(status["result_url"], timeout=60).content)
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    for segment in manifest["segments"]:
        for edge in (segment["start"], segment["end"]):
            at = int(round(edge * rate))
            window = samples[max(0, at - 3) : at + 3]
            assert np.abs(np.diff(window)).max(initial=0) < 0.05, (segment, edge)


def test_subtitles_parse_and_end_with_the_audio(epub_job: dict) -> None:
    manifest = httpx.get(epub_job["manifest_url"], timeout=60).json()
    cues = list(srt.parse(httpx.get(epub_job["artefacts"]["srt"], timeout=60).text))
    assert len(cues) == len(manifest["segments"])
    assert cues[-1].end.total_seconds() == pytest.approx(manifest["duration_seconds"], abs=0.01)
    vtt = webvtt.from_buffer(io.StringIO(httpx.get(epub_job["artefacts"]["vtt"], timeout=60).text))
    assert len(vtt.captions) == len(cues)
    hours, minutes, seconds = vtt.captions[-1].end.split(":")  # end_in_seconds is whole seconds
    assert int(hours) * 3600 + int(minutes) * 60 + float(seconds) == pytest.approx(manifest["duration_seconds"], abs=0.01)


def test_piper_segments_are_timed_by_word(epub_job: dict) -> None:
    """Word timings from the real Piper voice reach the manifest, words.json and
    the WebVTT cues, for the words as written ("3" said as "three")."""
    manifest = httpx.get(epub_job["manifest_url"], timeout=60).json()
    segments = manifest["segments"]
    assert all(s["timing"] == "word" for s in segments), [s for s in segments if s["timing"] != "word"]
    for segment in segments:
        words = segment["words"]
        assert [w["text"] for w in words] == segment["text"].split()
        assert all(segment["text"][w["offset"]:].startswith(w["text"]) for w in words)
        assert all(segment["start"] <= w["start"] <= w["end"] <= segment["end"] for w in words)
        assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))
    rain = next(s for s in segments if s["text"].startswith("Rain fell for 3 hours"))
    three = next(w for w in rain["words"] if w["text"] == "3")
    assert three["end"] > three["start"]
    document = httpx.get(epub_job["artefacts"]["words"], timeout=60).json()
    assert [s["words"] for s in document["segments"]] == [s["words"] for s in segments]
    vtt = httpx.get(epub_job["artefacts"]["vtt"], timeout=60).text
    assert vtt.count("<00:") >= sum(len(s["words"]) - 1 for s in segments) - 5  # a tag per word after the first


def test_chinese_chapter_headings(api: httpx.Client) -> None:
    text = "第一回 灵根育孕源流出\n\n海外有一国土，名曰傲来国。国近大海，海中有一座山。\n\n第二回 悟彻菩提真妙理\n\n美猴王享乐天真。一日，与群猴喜宴之间，忽然忧恼。"
    status = wait_for(api, submit(api, text, voice="tone-zh", format="mp3"))
    assert status["state"] == "done", status["error"]
    assert [c["title"] for c in status["chapters"]] == ["第一回 灵根育孕源流出", "第二回 悟彻菩提真妙理"]


def test_resubmission_synthesises_only_what_changed(api: httpx.Client, settings) -> None:
    import redis

    from chorus.tasks.state.fleet import Fleet

    fleet = Fleet(redis.Redis.from_url(settings.redis_url), ttl_s=60)
    [node] = fleet.nodes_of("tone")
    spoken = lambda: int(fleet.get(node).get("segments", 0))  # noqa: E731
    paragraphs = [f"Paragraph {p} begins here. It has a second sentence. And a third one, {p}." for p in range(5)]
    original = "\n\n".join(paragraphs)

    before = spoken()
    first = wait_for(api, submit(api, original, voice="tone", format="wav"))
    assert first["state"] == "done" and first["cache_hits"] == 0
    assert spoken() - before == first["segments_total"] == 15

    before = spoken()
    again = wait_for(api, submit(api, original, voice="tone", format="wav"))
    assert again["state"] == "done" and again["cache_hits"] == 15
    assert spoken() == before  # nothing synthesised

    edited = paragraphs.copy()
    edited[2] = "Paragraph 2 was rewritten entirely. It has a second sentence. And a third one, 2."
    before = spoken()
    third = wait_for(api, submit(api, "\n\n".join(edited), voice="tone", format="wav"))
    assert third["state"] == "done" and third["cache_hits"] == 14
    assert spoken() - before == 1  # only the changed sentence


def test_chapters_are_downloadable_before_the_book_is_done(api: httpx.Client) -> None:
    text = ("Chapter 1\n\nThe first chapter is quick. It ends here.\n\n"
            "Chapter 2\n\nThe second chapter will dawdle for a while. It ends later.")
    job_id = submit(api, text, voice="tone", format="mp3")
    deadline = time.monotonic() + 60
    early = None
    while time.monotonic() < deadline:
        status = api.get(f"/v1/jobs/{job_id}").json()
        if status["chapters"] and status["chapters"][0]["ready"] and status["state"] != "done":
            early = status
            break
        time.sleep(0.1)
    assert early is not None, "chapter 1 was not ready before the book was done"
    assert not early["chapters"][1]["ready"]
    assert httpx.get(early["chapters"][0]["url"], timeout=30).status_code == 200
    final = wait_for(api, job_id)
    assert final["state"] == "done" and all(c["ready"] for c in final["chapters"])


JOIN_SLACK = {"m4b": 0, "opus": 960, "mp3": 1105 + 576, "wav": 0, "flac": 0}  # samples a join may add (tests/test_remux.py)
# FFmpeg decodes an MP4's last AAC frame whole (players trim it by the edit list).
END_SLACK = {"m4b": 1024, "opus": 0, "mp3": 0, "wav": 0, "flac": 0}


@pytest.mark.parametrize("audio_format", ["m4b", "mp3", "opus", "wav", "flac"])
def test_the_book_is_its_chapter_files_joined(api: httpx.Client, tmp_path, audio_format: str) -> None:
    """Each chapter encoded once, the book joined from the chapter files: its
    length is theirs, its marks where the manifest says, each chapter and the
    book at the loudness the manifest reports (within 1 LU of the target),
    peaks under the ceiling."""
    from chorus.tasks.audio import loudness, remux

    text = ("Chapter 1\n\nThe first chapter is short. It has two sentences.\n\n"
            "Chapter 2\n\nThe second chapter is longer than the first one. It has three sentences. This is the last.\n\n"
            "Chapter 3\n\nA third chapter closes the book.")
    status = wait_for(api, submit(api, text, voice="tone", format=audio_format))
    assert status["state"] == "done", status["error"]
    manifest = httpx.get(status["manifest_url"], timeout=60).json()
    assert len(status["chapters"]) == len(manifest["chapters"]) == 3 and all(c["ready"] for c in status["chapters"])

    parts = []
    for number, chapter in enumerate(status["chapters"]):
        parts.append(tmp_path / f"{number}.{audio_format}")
        parts[-1].write_bytes(httpx.get(chapter["url"], timeout=60).content)
    book = tmp_path / f"book.{audio_format}"
    book.write_bytes(httpx.get(status["result_url"], timeout=60).content)

    samples, rate = remux.decode(book)
    lengths = [remux.decoded_samples(part) for part in parts]
    assert 0 <= samples.size - sum(lengths) <= JOIN_SLACK[audio_format] * (len(parts) - 1) + END_SLACK[audio_format]
    assert -0.001 <= samples.size / rate - manifest["duration_seconds"] <= 0.002 + END_SLACK[audio_format] / rate
    for number, (chapter, part) in enumerate(zip(manifest["chapters"], parts)):
        alone, _ = remux.decode(part)
        assert chapter["start"] == pytest.approx(sum(lengths[:number]) / rate, abs=0.002 + JOIN_SLACK[audio_format] * number / rate)
        assert loudness.loudness(alone, rate) == pytest.approx(chapter["loudness_lufs"], abs=1.0)
        assert chapter["loudness_lufs"] == pytest.approx(-18.0, abs=1.0)
        assert chapter["true_peak_dbfs"] <= -3.0 + 0.1
    assert loudness.loudness(samples, rate) == pytest.approx(manifest["loudness_lufs"], abs=1.0)
    assert manifest["loudness_lufs"] == pytest.approx(-18.0, abs=1.0)
    assert loudness.to_db(loudness.true_peak(samples, rate)) <= -3.0 + 0.5  # lossy codecs overshoot a little
    assert manifest["segments"][-1]["end"] <= manifest["duration_seconds"]
    if audio_format == "m4b":
        _, _, marks = decode(book.read_bytes())
        assert [float(c["start"] * c["time_base"]) for c in marks] == pytest.approx(
            [c["start"] for c in manifest["chapters"]], abs=0.002)
