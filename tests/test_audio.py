"""Audio mastering, encoders and subtitles on real signals and real files."""

from __future__ import annotations

import io
import resource
import time
import tracemalloc
from pathlib import Path

import mutagen
import numpy as np
import pyloudnorm
import pytest
import srt
import webvtt

from chorus.tasks.audio import formats, loudness, mastering, subtitles
from chorus.tasks.audio.loudness import LoudnessMeter
from chorus.tasks.audio.mastering import Mastering, fade, trim_silence
from tests.readback import read_audio_file, read_chapters, read_tags

RATE = 22050


def tone(seconds: float, rate: int = RATE, hz: float = 440.0, amplitude: float = 0.5, phase: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t + phase)).astype(np.float32)


def speechlike(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Voiced harmonics on a wandering pitch, with syllable-rate envelope and
    short pauses: a crest factor and spectrum roughly like speech."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase + rng.uniform(0, 6)) / k for k in range(1, 20))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 0.7
    envelope *= (np.sin(2 * np.pi * 0.25 * t) > -0.8)  # a pause now and then
    signal = voiced * envelope + 0.01 * rng.standard_normal(n)
    return (0.3 * signal / np.abs(signal).max()).astype(np.float32)


def at_lufs(samples: np.ndarray, lufs: float, rate: int = RATE) -> np.ndarray:
    measured = pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64))
    return (samples * 10 ** ((lufs - measured) / 20)).astype(np.float32)


def dbfs(value: float) -> float:
    return 20 * np.log10(value)


# -- mastering -------------------------------------------------------------------


def test_trim_silence_keeps_the_tone_and_a_margin() -> None:
    signal = np.concatenate([np.zeros(RATE), tone(1.0), np.zeros(2 * RATE)])
    signal[: RATE] += 1e-4 * np.random.default_rng(0).standard_normal(RATE).astype(np.float32)  # -80 dBFS hiss
    trimmed = trim_silence(signal, RATE, threshold_db=-45.0, keep_ms=40)
    margin = int(0.040 * RATE)
    window = int(0.010 * RATE)
    assert RATE + 2 * margin - window <= trimmed.size <= RATE + 2 * margin + 2 * window
    # The whole tone survives: its energy is all there.
    assert np.sum(trimmed**2) == pytest.approx(np.sum(tone(1.0) ** 2), rel=1e-3)
    assert trim_silence(np.zeros(RATE, dtype=np.float32), RATE).size == 0
    assert trim_silence(np.zeros(0, dtype=np.float32), RATE).size == 0


def test_fade_removes_the_click_at_a_join_with_silence() -> None:
    segment = tone(0.5, hz=440.0, phase=1.2)  # starts and ends far from zero
    faded = fade(segment, RATE, ms=8)
    assert abs(faded[0]) < 1e-6 and abs(faded[-1]) < 2e-3
    inner_step = np.abs(np.diff(segment)).max()  # the tone's own steepest step

    joined = np.concatenate([np.zeros(100, np.float32), faded, np.zeros(100, np.float32), faded])
    assert np.abs(np.diff(joined)).max() <= inner_step * 1.01
    unfaded = np.concatenate([np.zeros(100, np.float32), segment, np.zeros(100, np.float32)])
    assert np.abs(np.diff(unfaded)).max() > 5 * inner_step  # the click the fade removes
    # Fading never changes the middle.
    middle = slice(int(0.008 * RATE), -int(0.008 * RATE))
    assert np.array_equal(faded[middle], segment[middle])


@pytest.mark.parametrize("rate", [22050, 48000])
def test_loudness_meter_matches_pyloudnorm_in_random_chunks(rate: int) -> None:
    signal = np.concatenate([speechlike(12.0, rate, seed=1), 0.05 * speechlike(6.0, rate, seed=2),
                             np.zeros(2 * rate, np.float32), speechlike(10.0, rate, seed=3)])
    reference = pyloudnorm.Meter(rate).integrated_loudness(signal.astype(np.float64))
    meter = LoudnessMeter(rate)
    rng = np.random.default_rng(7)
    position = 0
    while position < signal.size:
        size = int(rng.integers(1, 12000))
        meter.add(signal[position : position + size])
        position += size
    print(f"\n{rate} Hz: meter {meter.integrated_lufs():.3f} LUFS, pyloudnorm {reference:.3f} LUFS")
    assert meter.integrated_lufs() == pytest.approx(reference, abs=0.1)


def test_loudness_meter_silence_and_memory() -> None:
    meter = LoudnessMeter(RATE)
    meter.add(np.zeros(5 * RATE, np.float32))
    assert meter.integrated_lufs() == float("-inf")
    assert meter.true_peak_dbfs() == float("-inf")
    assert len(meter._blocks) == 47  # one float per 100 ms step, no audio kept


@pytest.mark.parametrize("hz", [997.0, RATE / 4, 3000.0])
def test_true_peak_of_a_sine(hz: float) -> None:
    # At fs/4 with a 45 degree phase every sample misses the crest by 3 dB.
    signal = fade(tone(2.0, hz=hz, amplitude=0.5, phase=np.pi / 4), RATE, ms=20)
    meter = LoudnessMeter(RATE)
    for start in range(0, signal.size, 1000):
        meter.add(signal[start : start + 1000])
    assert meter.true_peak_dbfs() == pytest.approx(dbfs(0.5), abs=0.1)
    assert meter.true_peak_dbfs() >= dbfs(np.abs(signal).max()) - 1e-6
    if hz == RATE / 4:
        assert dbfs(np.abs(signal).max()) < dbfs(0.5) - 2.9


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
def test_k_weighting_gives_pyloudnorms_loudness(rate: int) -> None:
    """The meter's K-weighting and gating give pyloudnorm's integrated
    loudness, the reference, to rounding, at every rate the engines use."""
    signal = np.concatenate([speechlike(12.0, rate, seed=1), 0.05 * speechlike(6.0, rate, seed=2),
                             speechlike(10.0, rate, seed=3)]).astype(np.float64)
    noise = 0.1 * np.random.default_rng(0).standard_normal(10 * rate)
    for x in (signal, noise):
        reference = pyloudnorm.Meter(rate).integrated_loudness(x)
        assert loudness.loudness(x, rate) == pytest.approx(reference, abs=1e-6)


@pytest.mark.parametrize(("audio_format", "aac_coder"),
                         [("flac", ""), ("m4b", "twoloop"), ("m4b", "fast"), ("mp3", ""), ("opus", "")])
def test_mastering_segments_at_different_levels(tmp_path: Path, audio_format: str, aac_coder: str) -> None:
    """Segments at levels 18 dB apart, mastered as assembly masters one
    voice (one gain from their levels, found with the limiter's cost where
    the peaks need it, then limited) and encoded: the decoded book is at the
    target loudness and under the format's true-peak ceiling."""
    config = Mastering()
    quiet_lead = np.zeros(RATE // 2, np.float32)
    segments = [
        np.concatenate([quiet_lead, at_lufs(speechlike(6.0, seed=s), level), quiet_lead])
        for s, level in enumerate([-30.0, -12.0, -30.0, -12.0, -24.0])
    ]
    prepared = [mastering.prepare_segment(segment, RATE, config) for segment in segments]
    assert all(p.size < s.size for p, s in zip(prepared, segments))  # the silent lead and tail are gone
    levels = [loudness.SegmentLevel.of(p, RATE, config.sentence_pause_ms / 1000) for p in prepared]
    ceiling = config.ceiling_dbfs(audio_format)
    sample_ceiling = ceiling - mastering.LIMITER_MARGIN_DB
    lufs, peak = loudness.loudness_of(levels)
    gain_db = config.target_lufs - lufs
    if loudness.to_db(peak) + gain_db > ceiling:
        gain_db = mastering.calibrate_gain(prepared, RATE, gain_db, sample_ceiling)
    path = tmp_path / f"book.{audio_format}"
    with formats.Encoder(path, audio_format, RATE, **({"aac_coder": aac_coder} if aac_coder else {})) as encoder:
        for number, segment in enumerate(prepared):
            if number:
                encoder.write(mastering.pause(config, "paragraph" if number % 2 else "sentence", RATE))
            encoder.write(mastering.limit(segment * 10 ** (gain_db / 20), RATE, sample_ceiling))
    decoded, rate = read_audio_file(path)
    lufs = pyloudnorm.Meter(rate).integrated_loudness(decoded.astype(np.float64))
    meter = LoudnessMeter(rate)
    meter.add(decoded)
    print(f"\n{audio_format}: {lufs:.2f} LUFS (pyloudnorm), {meter.integrated_lufs():.2f} LUFS (meter), "
          f"true peak {meter.true_peak_dbfs():.2f} dBFS")
    assert lufs == pytest.approx(config.target_lufs, abs=1.0)
    assert meter.integrated_lufs() == pytest.approx(config.target_lufs, abs=1.0)
    # 0.01 dB for 16-bit rounding where the ceiling binds exactly (FLAC).
    assert meter.true_peak_dbfs() <= config.max_true_peak_dbfs + 0.01


@pytest.mark.parametrize("rate", [22050, 24000])
def test_segment_levels_give_the_loudness_of_the_joined_book(rate: int) -> None:
    """A book's loudness from its segments' stored levels is the loudness of
    the segments joined by pauses, measured over the audio (what assembly did
    in a first pass before levels were kept); the true peak is the same."""
    pause = np.zeros(round(0.25 * rate), np.float32)
    segments = [at_lufs(speechlike(seconds, rate, seed=seed), level, rate)
                for seed, (seconds, level) in enumerate([(6.0, -20.0), (2.5, -26.0), (9.0, -17.0), (4.0, -30.0)])]
    segments.insert(3, 0.5 * speechlike(0.3, rate, seed=9))  # shorter than a gating block
    joined = np.concatenate([part for segment in segments for part in (segment, pause)][:-1])
    whole = LoudnessMeter(rate)
    whole.add(joined)
    whole_lufs, whole_peak = whole.integrated_lufs(), whole.true_peak_dbfs()

    levels = [loudness.SegmentLevel.of(segment, rate, pad_s=0.25) for segment in segments]
    lufs, peak = loudness.loudness_of(loudness.SegmentLevel.from_bytes(level.to_bytes()) for level in levels)
    print(f"\njoined: {whole_lufs:.3f} LUFS, {whole_peak:.3f} dBFS; from levels: {lufs:.3f} LUFS, {dbfs(peak):.3f} dBFS")
    assert lufs == pytest.approx(whole_lufs, abs=0.1)
    assert dbfs(peak) == pytest.approx(whole_peak, abs=0.01)
    assert loudness.loudness_of([]) == (float("-inf"), 0.0)
    with pytest.raises(ValueError, match="not a segment level"):
        loudness.SegmentLevel.from_bytes(b"XX" + levels[0].to_bytes()[2:])


@pytest.mark.parametrize("rate", [8000, 22050, 44100])
def test_gating_blocks_of_a_whole_signal_are_the_meters(rate: int) -> None:
    """The array-at-once blocks of a whole signal are the streaming meter's,
    at lengths on, just before and just after a step's end (a partial step
    waits and counts in no block), and none before the first whole block."""
    step = loudness.BLOCK_SECONDS * rate / loudness.STEP_DIVISIONS
    lengths = [0, 1, round(3 * step), int(4 * step) - 1, int(4 * step), int(4 * step) + 1, round(17.5 * step), 3 * rate + 7]
    for length in lengths:
        x = 0.2 * np.random.default_rng(length).standard_normal(length)
        meter = LoudnessMeter(rate, true_peak=False)
        meter.add(x)
        blocks = loudness.gating_blocks(x, rate)
        assert blocks.size == meter.blocks.size
        np.testing.assert_allclose(blocks, meter.blocks, rtol=1e-9)


@pytest.mark.parametrize("floor", [0.0, 0.2, 0.5, 0.7])
def test_true_magnitude_is_exact_wherever_it_may_pass_the_floor(floor: float) -> None:
    """Interpolating only the windows that could pass ``floor`` changes
    nothing above it: against full 4x oversampling (scipy's upfirdn with the
    same filter), exact wherever the true magnitude passes the floor, never
    above it elsewhere; with the sample peak as floor, the true peak is exact."""
    import scipy.signal

    fir = loudness._oversampling_filter()
    delay = (fir.size - 1) // 2
    signals = [at_lufs(speechlike(12.0, seed=5), -12.0).astype(np.float64),
               0.3 * np.random.default_rng(6).standard_normal(20000),
               0.5 * np.sin(np.arange(4000) * np.pi / 2 + 0.3)]  # peaks between the samples
    for x in signals:
        full = np.abs(scipy.signal.upfirdn(fir, x, up=4))[delay : delay + 4 * x.size].reshape(-1, 4)[:, 1:]
        exact = np.maximum(np.abs(x), full.max(axis=1))
        pruned = loudness.true_magnitude(x, floor)
        above = exact > floor
        np.testing.assert_allclose(pruned[above], exact[above], rtol=1e-9)
        assert (pruned[~above] <= exact[~above] + 1e-12).all()
        assert loudness.true_peak(x, RATE) == pytest.approx(exact.max(), rel=1e-9)


def test_limiter_reports_the_true_peak_of_its_output() -> None:
    """The peak the limiter reports (its own oversampled magnitudes times its
    gain) is the true peak of what it returns, as the meter measures it."""
    loud = at_lufs(speechlike(8.0, seed=3), -12.0)
    limited, peak = mastering.limit_with_peak(loud, RATE, -3.2)
    measured = loudness.true_peak(limited, RATE)
    print(f"\nreported {dbfs(peak):.3f} dBFS, measured {dbfs(measured):.3f} dBFS")
    assert dbfs(peak) == pytest.approx(dbfs(measured), abs=0.05)
    assert dbfs(measured) <= -3.2 + 0.05
    quiet = at_lufs(speechlike(2.0, seed=4), -40.0)
    unchanged, quiet_peak = mastering.limit_with_peak(quiet, RATE, -3.2)
    assert unchanged is quiet and quiet_peak == pytest.approx(loudness.true_peak(quiet, RATE), rel=1e-3)


# -- encoders --------------------------------------------------------------------


@pytest.mark.parametrize("rate", [22050, 17000])
@pytest.mark.parametrize("audio_format", formats.FORMATS)
def test_every_format_round_trips_length_tags_and_chapters(tmp_path: Path, audio_format: str, rate: int) -> None:
    title, author = "Книга: A Tale 你好", "Ä. Author"
    path = tmp_path / f"book.{audio_format}"
    chapter_tone = tone(1.5, rate, hz=330.0)
    with formats.Encoder(path, audio_format, rate, title=title, author=author) as encoder:
        for number in range(3):
            encoder.add_chapter(f"Chapter {number + 1}", encoder.seconds)
            encoder.write(fade(chapter_tone, rate))
            encoder.write(np.zeros(round(0.31 * rate), np.float32))
    written = encoder.seconds
    assert written == pytest.approx(3 * 1.81, abs=3 / rate)  # 0.31 s rounds to whole samples
    assert [c.start_seconds for c in encoder.chapters] == pytest.approx([0.0, 1.81, 3.62], abs=3 / rate)

    decoded, decoded_rate = read_audio_file(path)
    assert decoded_rate == encoder.output_rate
    assert abs(decoded.size / decoded_rate - written) < 0.050
    # Same signal, same place: the second chapter's tone starts where it was written.
    envelope = np.abs(decoded[: int(2.5 * decoded_rate)])
    onset = np.flatnonzero(envelope[int(1.7 * decoded_rate) :] > 0.05)[0] / decoded_rate + 1.7
    assert onset == pytest.approx(1.81, abs=0.02)

    if audio_format != "wav":
        assert read_tags(path) == {"title": title, "artist": author, "album": title}
    if audio_format in ("m4b", "mp3"):
        chapters = read_chapters(path)
        assert [c.title for c in chapters] == ["Chapter 1", "Chapter 2", "Chapter 3"]
        assert [c.start_seconds for c in chapters] == pytest.approx([0.0, 1.81, 3.62], abs=0.050)


def test_the_fast_aac_coder_takes_a_fraction_of_the_cpu(tmp_path: Path) -> None:
    """``CHORUS_AAC_CODER=fast``: FFmpeg's constant-quantiser rate control,
    much cheaper than its default two-loop search; an unknown coder is refused."""
    speech = speechlike(30.0, seed=8)

    def cpu_seconds(coder: str) -> float:
        started = time.process_time()
        with formats.Encoder(tmp_path / f"{coder}.m4b", "m4b", RATE, aac_coder=coder) as encoder:
            encoder.write(speech)
        return time.process_time() - started

    twoloop, fast = min(cpu_seconds("twoloop") for _ in range(2)), min(cpu_seconds("fast") for _ in range(2))
    print(f"\n30 s of speech to M4B: twoloop {twoloop:.3f} s of CPU, fast {fast:.3f} s")
    assert fast < twoloop / 2
    decoded, rate = read_audio_file(tmp_path / "fast.m4b")
    assert rate == RATE and abs(decoded.size - speech.size) < RATE // 10
    with pytest.raises(ValueError, match="AAC coder 'best'"):
        formats.Encoder(tmp_path / "x.m4b", "m4b", RATE, aac_coder="best")


def test_m4b_is_an_aac_audiobook(tmp_path: Path) -> None:
    import av

    path = tmp_path / "book.m4b"
    with formats.Encoder(path, "m4b", RATE, title="T", author="A") as encoder:
        encoder.add_chapter("One", 0.0)
        encoder.write(tone(2.0))
        encoder.add_chapter("Two", encoder.seconds)
        encoder.write(tone(2.0))
    assert formats.CODECS["m4b"].content_type == "audio/mp4"
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.channels == 1
        assert container.metadata["genre"] == "Audiobook"
        chapters = container.chapters()
        assert [float(c["end"] * c["time_base"]) for c in chapters] == pytest.approx([2.0, 4.0], abs=0.01)
        bitrate = path.stat().st_size * 8 / 4.0
        assert 30_000 < bitrate < 100_000
    info = mutagen.File(str(path))
    assert [c.title for c in info.chapters] == ["One", "Two"]  # QuickTime chapter track, as mutagen reads it
    assert info.tags["stik"] == [2]


def _rss_anon_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


@pytest.mark.parametrize("audio_format", ["m4b", "mp3"])
def test_encoder_memory_does_not_grow_with_duration(tmp_path: Path, audio_format: str) -> None:
    """Half an hour in one-second blocks: traced Python memory and anonymous RSS
    stay flat (the file grows on disk, not in memory). bench/assembly_memory.py
    measures whole assemblies of 1 h and 10 h."""
    block = speechlike(1.0, seed=4)
    rss_before = _rss_anon_kb()
    tracemalloc.start()
    try:
        with formats.Encoder(tmp_path / f"long.{audio_format}", audio_format, RATE, title="Long") as encoder:
            rss_at_minute = 0
            for second in range(30 * 60):
                if second % 600 == 0:
                    encoder.add_chapter(f"Chapter {second // 600 + 1}", encoder.seconds)
                encoder.write(block)
                if second == 60:
                    rss_at_minute = _rss_anon_kb()
            rss_at_end = _rss_anon_kb()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = (tmp_path / f"long.{audio_format}").stat().st_size
    print(f"\n{audio_format}, 30 min: tracemalloc peak {peak / 1e6:.1f} MB, anonymous RSS "
          f"+{(rss_at_minute - rss_before) / 1024:.1f} MB after 1 min, +{(rss_at_end - rss_before) / 1024:.1f} MB "
          f"after 30 min, max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"file {size / 1e6:.1f} MB")
    assert encoder.seconds == pytest.approx(1800.0)
    assert peak < 50e6
    assert (rss_at_end - rss_before) / 1024 < 50


def test_encoder_counts_samples_and_may_close_twice(tmp_path: Path) -> None:
    with formats.Encoder(tmp_path / "a.wav", "wav", RATE) as encoder:
        encoder.write(tone(1.0))
        encoder.write(np.zeros(0, np.float32))
    assert encoder.samples_written == RATE and encoder.seconds == 1.0
    encoder.close()  # twice is fine
    samples, rate = formats.read_audio((tmp_path / "a.wav").read_bytes())
    assert rate == RATE and samples.size == RATE
    assert set(formats.FORMATS) == {"wav", "flac", "mp3", "opus", "m4b", "epub"}


# -- subtitles -------------------------------------------------------------------

CUES = [
    subtitles.Cue(1, 0.0, 2.345, "It was a bright cold day in April."),
    subtitles.Cue(2, 2.6, 9.001, "And the clocks were striking thirteen, while Winston Smith, his chin nuzzled "
                                  "into his breast in an effort to escape the vile wind, slipped quickly."),
    subtitles.Cue(3, 9.5, 3725.125, "Ünïcode — 你好，世界。"),
]


def test_srt_parses_back() -> None:
    parsed = list(srt.parse(subtitles.to_srt(CUES)))
    assert len(parsed) == len(CUES)
    assert parsed[-1].end.total_seconds() == pytest.approx(CUES[-1].end, abs=1e-3)
    assert [p.start.total_seconds() for p in parsed] == pytest.approx([c.start for c in CUES], abs=1e-3)
    for cue in parsed:
        lines = cue.content.split("\n")
        assert len(lines) <= 2
    assert all(len(line) <= 42 for line in parsed[0].content.split("\n"))
    assert " ".join(parsed[1].content.split("\n")) == CUES[1].text


def test_vtt_parses_back() -> None:
    text = subtitles.to_vtt(CUES)
    assert text.startswith("WEBVTT")
    parsed = webvtt.from_buffer(io.StringIO(text))
    assert len(parsed.captions) == len(CUES)
    assert parsed.captions[-1].end == "01:02:05.125"
    assert parsed.captions[0].end == "00:00:02.345"
    assert all(len(c.lines) <= 2 for c in parsed.captions)
    assert parsed.captions[2].text == CUES[2].text


def test_long_cues_split_to_fit_two_lines() -> None:
    split = subtitles.split_long_cues(CUES)
    assert len(split) == 4 and [c.index for c in split] == [1, 2, 3, 4]
    assert split[1].start == CUES[1].start and split[2].end == CUES[1].end
    assert split[1].end == split[2].start
    for cue in split:
        assert all(len(line) <= 42 for line in subtitles.wrap(cue.text))
    parsed = list(srt.parse(subtitles.to_srt(split)))
    assert len(parsed) == 4 and parsed[-1].end.total_seconds() == pytest.approx(CUES[-1].end, abs=1e-3)


def test_cues_from_manifest_entries() -> None:
    entries = [{"index": 0, "text": "One.", "start": 0.0, "end": 1.2},
               {"index": 1, "text": "Two.", "start": 1.45, "end": 2.0}]
    cues = subtitles.cues_from_segments(entries)
    assert [c.index for c in cues] == [1, 2] and cues[1].start == 1.45


def test_limiter_holds_the_ceiling_and_leaves_quiet_audio_alone() -> None:
    loud = speechlike(5.0, seed=7) * 4.0
    limited = mastering.limit(loud, RATE, -3.0)
    assert np.abs(limited).max() <= 10 ** (-3.0 / 20) + 1e-6
    quiet = speechlike(5.0, seed=8) * 0.05
    assert np.array_equal(mastering.limit(quiet, RATE, -3.0), quiet)


def test_calibrated_gain_reaches_the_loudness_despite_the_limiter() -> None:
    segments = [speechlike(3.0, seed=seed) * 0.2 for seed in range(6)]
    joined = np.concatenate(segments)
    base = loudness.loudness(joined, RATE)
    wanted = -18.0 - base
    gain_db = mastering.calibrate_gain(segments, RATE, wanted, -3.5)
    result = mastering.limit(joined * 10 ** (gain_db / 20), RATE, -3.5)
    assert loudness.loudness(result, RATE) == pytest.approx(-18.0, abs=0.15)
    assert np.abs(result).max() <= 10 ** (-3.5 / 20) + 1e-6
