"""The guard against bad takes: the judge on synthetic audio, the tone
stand-in's bad takes, and, on the real stack, retakes, suspect segments in the
manifest and the job's status, the record surviving the segment cache, and
the real Piper voice passing on a realistic paragraph."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from chorus.configs import Model, Voice
from chorus.tasks.audio import takes
from chorus.tasks.audio.formats import read_audio, to_wav_bytes
from tests.conftest import submit, wait_for
from tests.test_e2e import STORY
from chorus.workers.engines.tone import ToneEngine

RATE = 22050


def speech(seconds: float, rate: int = RATE, syllable_s: float = 0.2, seed: int = 0) -> np.ndarray:
    """Speech-like bursts of noise: 70 % syllable, 30 % pause, at about -20 dBFS."""
    rng = np.random.default_rng(seed)
    syllable = int(syllable_s * rate)
    count = max(1, round(seconds * rate / syllable))
    pattern = np.concatenate([np.ones(int(0.7 * syllable)), np.zeros(syllable - int(0.7 * syllable))])
    envelope = np.tile(pattern, count)
    return (0.15 * rng.standard_normal(envelope.size) * envelope).astype(np.float32)


ENGLISH = "The keeper climbed the stairs at dusk and wound the clockwork before the storm came in."


def english_letters() -> int:
    return sum(c.isalpha() for c in ENGLISH)


def normal_english(seed: int = 0) -> np.ndarray:
    return speech(english_letters() * 0.065, seed=seed)  # Piper's median rate


# -- the judge ---------------------------------------------------------------------------


def test_normal_speech_passes() -> None:
    verdict = takes.judge(normal_english(), RATE, ENGLISH)
    assert verdict.ok and verdict.distance == 0.0, verdict.problems
    assert 0.6 < verdict.voiced_share < 0.8 and verdict.clipped_share == 0.0


def test_leading_and_trailing_silence_do_not_count() -> None:
    padded = np.concatenate([np.zeros(RATE * 2), normal_english(), np.zeros(RATE * 3)]).astype(np.float32)
    verdict = takes.judge(padded, RATE, ENGLISH)
    assert verdict.ok, verdict.problems
    assert verdict.seconds == pytest.approx(takes.judge(normal_english(), RATE, ENGLISH).seconds, abs=0.02)


@pytest.mark.parametrize("audio", [np.zeros(RATE * 4, dtype=np.float32), np.zeros(0, dtype=np.float32),
                                   np.full(RATE, 1e-4, dtype=np.float32)])
def test_silence_is_silent(audio: np.ndarray) -> None:
    verdict = takes.judge(audio, RATE, ENGLISH)
    assert verdict.problems == (f"silent: no sound for {english_letters()} letters",)


def test_a_loop_is_too_long() -> None:
    verdict = takes.judge(np.tile(normal_english(), 3), RATE, ENGLISH)
    assert len(verdict.problems) == 1 and verdict.problems[0].startswith("too long:"), verdict.problems


def test_a_take_cut_short_is_too_short() -> None:
    verdict = takes.judge(normal_english()[: int(0.3 * english_letters() * 0.065 * RATE)], RATE, ENGLISH)
    assert len(verdict.problems) == 1 and verdict.problems[0].startswith("too short:"), verdict.problems


def test_mostly_silence() -> None:
    # Within the length bounds, but four fifths of it silent.
    total = english_letters() * 0.08
    gap = np.zeros(int(total * 0.8 * RATE), dtype=np.float32)
    audio = np.concatenate([speech(total * 0.1), gap, speech(total * 0.1, seed=1)])
    verdict = takes.judge(audio, RATE, ENGLISH)
    assert len(verdict.problems) == 1 and verdict.problems[0].startswith("mostly silence:"), verdict.problems


def test_clipping() -> None:
    verdict = takes.judge(np.clip(normal_english() * 12, -1, 1), RATE, ENGLISH)
    assert len(verdict.problems) == 1 and verdict.problems[0].startswith("clipped:"), verdict.problems
    # A single sample touching full scale is a peak, not clipping.
    peak = normal_english()
    peak[1000] = 1.0
    assert takes.judge(peak, RATE, ENGLISH).ok


def test_silence_around_a_clipped_take_does_not_hide_it() -> None:
    clipped = np.clip(normal_english() * 12, -1, 1)
    padded = np.concatenate([np.zeros(RATE * 20), clipped, np.zeros(RATE * 20)]).astype(np.float32)
    verdict = takes.judge(padded, RATE, ENGLISH)
    assert verdict.clipped_share == pytest.approx(takes.judge(clipped, RATE, ENGLISH).clipped_share, rel=0.01)
    assert [p.split(":")[0] for p in verdict.problems] == ["clipped"]


def test_nan_is_not_finite() -> None:
    audio = normal_english()
    audio[500:600] = np.nan
    verdict = takes.judge(audio, RATE, ENGLISH)
    assert verdict.problems == ("not finite: NaN or infinite samples",) and not verdict.finite


@pytest.mark.parametrize(("text", "seconds", "ok"), [
    ("Yes.", 0.4, True), ("Ah!", 0.26, True), ("Oh, yes!", 0.82, True),  # Piper's own figures
    ("Yes.", 0.05, True),  # a one-word segment has no lower bound worth the name
    ("Yes.", 2.0, False),  # but "Yes." does not take two seconds
])
def test_short_segments(text: str, seconds: float, ok: bool) -> None:
    assert takes.judge(speech(seconds, syllable_s=min(0.2, seconds)), RATE, text).ok is ok


def test_chinese_bounds_are_per_character() -> None:
    text = "海外有一国土，名曰傲来国。国近大海，海中有一座山。"
    expected = takes.expected(text)
    characters = sum(1 for c in text if c.isalpha())
    assert (expected.letters, expected.syllables) == (0, characters) and characters == 21
    assert takes.judge(speech(characters * 0.22), RATE, text).ok  # 4.5 characters a second
    assert not takes.judge(speech(characters * 0.05), RATE, text).ok  # 20 a second: nobody speaks that fast
    assert not takes.judge(speech(characters * 0.8), RATE, text).ok
    # English letter rates would call normal Chinese far too long: each script has its own.
    assert characters * 0.22 > characters * takes.LETTER.high + takes.SLACK_HIGH_S


def test_mixed_text_counts_each_script_at_its_rate() -> None:
    expected = takes.expected("他说 hello 三次。")
    assert (expected.letters, expected.syllables) == (5, 4)
    assert expected.high_s == pytest.approx(5 * takes.LETTER.high + 4 * takes.SYLLABLE.high + takes.SLACK_HIGH_S)


def test_nothing_to_say_accepts_nothing() -> None:
    assert takes.judge(np.zeros(0, dtype=np.float32), RATE, "…").ok
    assert not takes.judge(speech(5.0), RATE, "…").ok


def test_distance_orders_bad_takes() -> None:
    normal = normal_english()
    a_bit_long = takes.judge(np.tile(normal, 3), RATE, ENGLISH)
    far_too_long = takes.judge(np.tile(normal, 8), RATE, ENGLISH)
    silent = takes.judge(np.zeros_like(normal), RATE, ENGLISH)
    assert 0 < a_bit_long.distance < far_too_long.distance < silent.distance


def test_the_record_travels_in_the_wav() -> None:
    audio = normal_english()
    plain = to_wav_bytes(audio, RATE)
    assert takes.record_in_wav(plain) is None  # cached before takes were judged
    record = {"takes": 3, "suspect": "too long: 30.0 s of sound for 70 letters (at most 9.4 s)"}
    recorded = takes.wav_with_record(plain, record)
    assert takes.record_in_wav(recorded) == record
    samples, rate = read_audio(recorded)
    assert rate == RATE and np.array_equal(samples, read_audio(plain)[0])
    assert sf.info(io.BytesIO(recorded)).frames == audio.size
    assert takes.record_in_wav(b"not a wav at all") is None and takes.record_in_wav(recorded[:20]) is None


# -- the tone stand-in's takes -------------------------------------------------------------


def tone_engine() -> ToneEngine:
    options = {"silent_word": "quietus", "loop_word": "ouroboros", "clip_word": "klaxon", "retake_word": "stammer"}
    return ToneEngine(Model("tone", "tone", "cpu", "1", 16000, 120, options=options))


TONE_VOICE = Voice("tone", "tone", "tone", "en", 16000)


@pytest.mark.parametrize("text", [
    ENGLISH, "Yes.", "Extraordinary!", "Paragraph zero begins here.", "海外有一国土，名曰傲来国。", "第一回 灵根育孕源流出",
    "A very long sentence " * 5 + "with plenty of words in it to take its time.",
])
def test_tone_speaks_within_the_bounds(text: str) -> None:
    engine = tone_engine()
    verdict = takes.judge(engine.synthesize(text, TONE_VOICE), engine.sample_rate, text)
    assert verdict.ok, verdict.problems


@pytest.mark.parametrize(("word", "problem"), [
    ("quietus", "silent"), ("ouroboros", "too long"), ("klaxon", "clipped"), ("stammer", "too long"),
])
def test_tone_bad_takes(word: str, problem: str) -> None:
    engine = tone_engine()
    text = f"The {word} came at the end of the long day."
    verdict = takes.judge(engine.synthesize(text, TONE_VOICE), engine.sample_rate, text)
    assert [p.split(":")[0] for p in verdict.problems] == [problem]
    seeded = takes.judge(engine.synthesize(text, TONE_VOICE, seed=12345), engine.sample_rate, text)
    assert seeded.ok is (word == "stammer")  # only the retake word is fine on another draw


# -- on the stack: retakes, suspects, the cache ----------------------------------------------


def manifest_of(status: dict) -> dict:
    return httpx.get(status["manifest_url"], timeout=60).json()


@pytest.mark.stack
def test_a_take_bad_the_first_time_is_spoken_again(api: httpx.Client) -> None:
    text = "The bell rang twice. The stammer came and went. The doors were shut."
    status = wait_for(api, submit(api, text, voice="tone", format="wav"))
    assert status["state"] == "done", status["error"]
    assert status["suspect_segments"] == 0
    manifest = manifest_of(status)
    assert [s.get("takes") for s in manifest["segments"]] == [1, 2, 1]
    assert not any("suspect" in s for s in manifest["segments"])
    assert manifest["retried_segments"] == 1 and manifest["suspect_segments"] == 0
    # The kept take is the good one: as long as its text, not LOOPS times over.
    retaken = manifest["segments"][1]
    assert retaken["end"] - retaken["start"] < 2.0


@pytest.mark.stack
def test_takes_always_bad_are_kept_marked_and_the_book_is_done(api: httpx.Client, settings) -> None:
    text = ("The ouroboros turned in the dark. A quiet evening followed. The quietus fell at dawn. "
            "Then the klaxon sounded over the water.")
    status = wait_for(api, submit(api, text, voice="tone", format="mp3"))
    assert status["state"] == "done", status["error"]
    assert status["suspect_segments"] == 3
    manifest = manifest_of(status)
    segments = manifest["segments"]
    attempts = settings.take_retries + 1
    assert [s["takes"] for s in segments] == [attempts, 1, attempts, attempts]
    assert segments[0]["suspect"].startswith("too long:")
    assert "suspect" not in segments[1]
    assert segments[2]["suspect"].startswith("silent:")
    assert segments[3]["suspect"].startswith("clipped:")
    assert manifest["suspect_segments"] == 3 and manifest["retried_segments"] == 3

    # Resubmitted, every segment comes from the cache, and so does its record.
    again = wait_for(api, submit(api, text, voice="tone", format="mp3"))
    assert again["state"] == "done" and again["cache_hits"] == len(segments)
    assert again["suspect_segments"] == 3
    assert [(s.get("takes"), s.get("suspect")) for s in manifest_of(again)["segments"]] == [
        (s.get("takes"), s.get("suspect")) for s in segments
    ]


@pytest.mark.stack
def test_real_piper_takes_pass_the_check(api: httpx.Client) -> None:
    """Joe on a realistic paragraph: no segment retried, none suspect. (Its
    bounds were set on 633 corpus segments, none of which came within 76 % of
    them; tasks/audio/takes.py.)"""
    status = wait_for(api, submit(api, STORY, voice="joe", format="wav"))
    assert status["state"] == "done", status["error"]
    assert status["suspect_segments"] == 0
    manifest = manifest_of(status)
    assert len(manifest["segments"]) >= 6
    assert [s.get("takes") for s in manifest["segments"]] == [1] * len(manifest["segments"])
    assert manifest["retried_segments"] == 0 and manifest["suspect_segments"] == 0

