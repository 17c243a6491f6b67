"""Chapter files joined into a book without encoding again (``remux``), on
synthetic tones: lengths, chapter marks, tags, the silence at each join and
the loudness of the result, read back by FFmpeg (PyAV)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from chorus.tasks.audio import formats, loudness, mastering, remux

RATE = 22050
PAUSE_S = 2.0
TITLES = ("Dawn", "Noon", "Dusk")
# What one join may add at most, in the file's samples: one frame for the codecs
# whose joins are sample-exact or nearly (AAC: none; Opus: its last packet's
# padding and pre-skip); MP3 keeps LAME's encoder delay (1105) and its padding.
JOIN_SLACK = {"m4b": 0, "opus": 960, "mp3": 1105 + 576, "wav": 0, "flac": 0}
FRAME = {"m4b": 1024, "opus": 960, "mp3": 576, "wav": 1, "flac": 1}  # at 22.05 kHz in, in the file's samples


def tone(seconds: float, hz: float = 440.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    return mastering.fade((level * np.sin(2 * np.pi * hz * t)).astype(np.float32), RATE)


def chapter_files(directory: Path, audio_format: str, seconds: tuple[float, ...] = (1.3, 2.1, 1.7)) -> list[Path]:
    """Chapters as the assembly writes them: every one after the first opens
    with the chapter pause, and each ends on a whole codec frame."""
    paths = []
    for number, length in enumerate(seconds):
        path = directory / f"{number}.{audio_format}"
        with formats.Encoder(path, audio_format, RATE, title=TITLES[number], author="Ada") as encoder:
            if number:  # less what the join adds, as the assembly writes it
                encoder.write(np.zeros(round(PAUSE_S * RATE) - encoder.join_delay, dtype=np.float32))
            encoder.write(tone(length, hz=330 + 110 * number))
            assert encoder.pad_to_frame() < encoder.frame_unit
            assert encoder.samples_written % encoder.frame_unit == 0
        paths.append(path)
    return paths


def quiet_runs(samples: np.ndarray, rate: int, longer_than_s: float = 0.5) -> list[float]:
    """Lengths (s) of the stretches under -50 dBFS that last longer than ``longer_than_s``."""
    quiet = np.r_[False, np.abs(samples) < 0.003, False]
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    runs = (edges[1::2] - edges[::2]) / rate
    return [float(r) for r in runs if r > longer_than_s]


@pytest.mark.parametrize("audio_format", remux.JOINED)
def test_the_book_is_its_chapters_end_to_end(tmp_path: Path, audio_format: str) -> None:
    parts = chapter_files(tmp_path, audio_format)
    book = tmp_path / f"book.{audio_format}"
    joined = remux.join(parts, TITLES, book, audio_format, "The Day", "Ada")

    lengths = [remux.decoded_samples(p) for p in parts]
    samples, rate = remux.decode(book)
    extra = samples.size - sum(lengths)
    assert 0 <= extra <= JOIN_SLACK[audio_format] * (len(parts) - 1)
    assert joined.duration == pytest.approx(samples.size / rate, abs=1 / rate)
    # Each chapter starts where the ones before it end (plus what their joins
    # hold), and plays there as its own file plays: no click at a join.
    for number, (start, part) in enumerate(zip(joined.starts, parts)):
        before = sum(lengths[:number])
        assert before / rate <= start <= (before + JOIN_SLACK[audio_format] * number) / rate + 1e-9
        alone, _ = remux.decode(part)
        at = round(start * rate)
        assert np.abs(samples[at : at + alone.size] - alone).max() < 0.01


@pytest.mark.parametrize("audio_format", remux.JOINED)
def test_the_joins_hold_the_planned_pause_and_no_click(tmp_path: Path, audio_format: str) -> None:
    parts = chapter_files(tmp_path, audio_format)
    book = tmp_path / f"book.{audio_format}"
    joined = remux.join(parts, TITLES, book, audio_format, "The Day", "Ada")
    samples, rate = remux.decode(book)

    pauses = quiet_runs(samples, rate)
    assert len(pauses) == len(parts) - 1
    # The fades make each pause a little longer than the silence written;
    # a codec frame is all a join may add.
    allowed = PAUSE_S + FRAME[audio_format] / rate + 0.02
    assert all(PAUSE_S - 1 / rate <= pause <= allowed for pause in pauses), pauses
    for start in joined.starts[1:]:  # each chapter after the first opens in silence
        at = round(start * rate)
        assert np.abs(samples[at : at + round(PAUSE_S * rate) - 2 * FRAME[audio_format] - 1105]).max() < 0.003


@pytest.mark.parametrize("audio_format", remux.JOINED)
def test_chapter_marks_and_tags_read_back(tmp_path: Path, audio_format: str) -> None:
    import av

    parts = chapter_files(tmp_path, audio_format)
    book = tmp_path / f"book.{audio_format}"
    joined = remux.join(parts, TITLES, book, audio_format, "The Day", "Ada")
    with av.open(str(book)) as container:
        tags = {**container.metadata, **container.streams.audio[0].metadata}
        marks = [(c["metadata"].get("title"), float(c["start"] * c["time_base"])) for c in container.chapters()]
        assert container.duration / av.time_base == pytest.approx(joined.duration, abs=0.03)
    if audio_format != "wav":  # WAV carries no tags
        assert {k.lower(): v for k, v in tags.items()}.get("title") == "The Day"
        assert {k.lower(): v for k, v in tags.items()}.get("artist") == "Ada"
    if audio_format == "m4b":
        assert [t for t, _ in marks] == list(TITLES)
        assert [s for _, s in marks] == pytest.approx(joined.starts, abs=0.001)
    if audio_format == "mp3":
        from mutagen.id3 import ID3

        chaps = sorted(ID3(str(book)).getall("CHAP"), key=lambda c: c.start_time)
        assert [c.sub_frames["TIT2"].text[0] for c in chaps] == list(TITLES)
        assert [c.start_time / 1000 for c in chaps] == pytest.approx(joined.starts, abs=0.001)


@pytest.mark.parametrize("audio_format", ["m4b", "mp3", "opus", "flac"])
def test_the_books_loudness_is_its_chapters_blocks_together(tmp_path: Path, audio_format: str) -> None:
    """The book's loudness gated over its chapters' blocks (as the assembly
    reports it) is what a meter reads from the decoded book, within 1 LU;
    each chapter's too."""
    parts = chapter_files(tmp_path, audio_format)
    book = tmp_path / f"book.{audio_format}"
    remux.join(parts, TITLES, book, audio_format, "The Day", "Ada")
    levels = []
    for part in parts:
        samples, rate = remux.decode(part)
        meter = loudness.LoudnessMeter(rate, true_peak=False)
        meter.add(samples)
        levels.append(loudness.SegmentLevel(rate, meter.blocks.astype(np.float32), 0.0))
        assert meter.integrated_lufs() == pytest.approx(loudness.loudness(tone(2.0), RATE), abs=1.0)
    merged, _ = loudness.loudness_of(levels)
    samples, rate = remux.decode(book)
    assert loudness.loudness(samples, rate) == pytest.approx(merged, abs=1.0)


def test_remuxing_a_long_book_takes_a_fraction_of_its_encoding(tmp_path: Path) -> None:
    """Forty minutes of AAC in eight chapters: joining copies packets, so it
    takes well under a second per hour of audio (here: under 10 s for 40
    minutes, on a loaded host)."""
    parts = []
    block = tone(60.0)
    for number in range(8):
        path = tmp_path / f"{number}.m4b"
        with formats.Encoder(path, "m4b", RATE, aac_coder="fast") as encoder:
            if number:
                encoder.write(np.zeros(round(PAUSE_S * RATE), dtype=np.float32))
            for _ in range(5):
                encoder.write(block)
            encoder.pad_to_frame()
        parts.append(path)
    started = time.perf_counter()
    joined = remux.join(parts, [f"Part {n}" for n in range(8)], tmp_path / "book.m4b", "m4b", "Long", "Ada")
    assert time.perf_counter() - started < 10
    assert joined.duration == pytest.approx(8 * 300 + 7 * PAUSE_S, abs=8 * 1024 / RATE)
