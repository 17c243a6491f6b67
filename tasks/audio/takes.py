"""Whether one take of a segment sounds like its text: a pure judge.

LLM-based voices (CosyVoice2) sometimes loop, run on after the text, stop
early or go silent; any engine can clip. ``judge`` looks at an engine's raw
output for one segment and its spoken text, and says what, if anything, looks
wrong. Raw, before trimming and fades: the judge ignores the silence trimming
would cut anyway, and sees clipping exactly as the engine made it.

* **duration**: the sounding span (first to last 10 ms window at or above the
  trim threshold, i.e. what ``mastering.trim_silence`` keeps, so an engine's
  own leading and trailing silence does not count) must lie within bounds that
  grow with the text: ``letters x per-letter bounds + syllables x
  per-syllable bounds``, divided by the job's speed (a take at 2.0 is half
  as long), widened by a fixed slack in seconds so that very short segments
  ("Yes.", "Ah!") are judged sensibly;
* **silence**: at least ``MIN_VOICED_SHARE`` of the 10 ms windows inside that
  span are sound (not mostly silence), and a text with something to say has
  some sound at all;
* **clipping**: at most ``MAX_CLIPPED_SHARE`` of the span's samples at or
  above ``CLIP_LEVEL`` of full scale;
* **finite**: no NaN or infinite samples (they would poison the book's
  loudness measurement).

Bounds (English, measured; Chinese, derived; see ``LETTER`` and ``SYLLABLE``)
are generous on purpose: a false alarm costs one more synthesis, a miss costs a
bad minute in a book, and this check must never fire on good speech. It does
not catch mild truncation, a wrong word, or noise in place of speech (the tiny
random CosyVoice2 model of the tests passes it): that needs speech recognition.

``take_record`` says what the manifest reports of a segment's takes (how
many, why the kept one still looks wrong; the worker adds the kept take's word
times, ``tasks/audio/timings.py``); ``wav_with_record`` stores that
record inside the segment's cached WAV, in a RIFF chunk of its own, and
``record_in_wav`` reads it back, so the record lives exactly as long as the
audio it describes and a later job that takes the segment from the cache
reports it too.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from chorus.tasks.text.script import script_of

WINDOW_S = 0.010  # the same 10 ms windows as mastering.trim_silence
SOUND_DB = -45.0  # the trim threshold (configs.mastering): a window this loud is sound


@dataclass(frozen=True)
class Rate:
    """Seconds of sound per unit of text, at least and at most."""

    low: float
    high: float


# English (and every other alphabetic script: Latin, Cyrillic, Greek, Arabic,
# Hebrew), per letter of the spoken form. Measured with the real Piper voice
# (en_US joe medium) on 633 segments of the corpus (Pride and Prejudice and
# Frankenstein: 520 drawn at random, 80 of at most 20 characters, 40 of 300 or
# more): seconds of sound per letter from 0.041 to 0.164, median 0.064;
# segments of 30+ letters 0.050 to 0.106, of 80+ letters 0.053 to 0.081. The
# bounds are about half the fastest and 1.5 times the slowest longer segment,
# room for voices slower or faster than Joe; the extremes of short segments
# are covered by the slack below. With them no corpus segment comes closer
# than 76 % of the upper bound or 1.9 times the lower one.
LETTER = Rate(low=0.030, high=0.120)
# Chinese, per character (one syllable each), and Japanese kana, Korean hangul
# and digits left in the spoken form (a digit is one short word in any
# language). Not measured: no Chinese voice runs here (the tiny CosyVoice2 test
# model makes noise). Mandarin is read at about 4 to 5 characters a second
# (0.20 to 0.25 s), fast speech reaches 6 to 7 (0.14 s), slow narration 3
# (0.33 s); punctuation adds pauses. The same margins as for English: below
# 0.10 s is faster than anyone speaks, above 0.45 s is slower than anyone reads.
SYLLABLE = Rate(low=0.10, high=0.45)
SYLLABIC_SCRIPTS = frozenset({"han", "kana", "hangul"})
# Fixed slack, seconds: below, so that a one-word segment has no lower bound
# worth the name (Piper says "Ah!" in 0.26 s); above, so that a short segment
# may take a breath ("Oh, yes!" 0.82 s for 5 letters; its limit is 1.6 s).
SLACK_LOW_S = 0.3
SLACK_HIGH_S = 1.0
# Piper's sound fills 61 % to 100 % of its span (1st percentile 65 %, median
# 78 %) in 10 ms windows at -45 dBFS; a take under 35 % is mostly silence.
MIN_VOICED_SHARE = 0.35
# Piper's loudest sample on the corpus was 0.90 of full scale; engines that
# clip to [-1, 1] leave flat tops at 1.0. One sample in a thousand at full
# scale is audible distortion.
CLIP_LEVEL = 0.99
MAX_CLIPPED_SHARE = 0.001
# How far from the bounds a take with no sound at all, or with non-finite
# samples, counts when takes are compared (further than any take with sound).
_SILENT_DISTANCE = 100.0
_NOT_FINITE_DISTANCE = 1000.0


@dataclass(frozen=True)
class Expected:
    """What a text should sound like: its units and the sounding span's bounds."""

    letters: int
    syllables: int
    low_s: float
    high_s: float

    @property
    def says_something(self) -> bool:
        return self.letters + self.syllables > 0

    def describe(self) -> str:
        parts = [f"{self.letters} letters"] if self.letters else []
        parts += [f"{self.syllables} syllables"] if self.syllables else []
        return " and ".join(parts) or "no words"


def expected(spoken: str, speed: float = 1.0) -> Expected:
    """The bounds of a spoken text's sounding span, in seconds, at a speaking
    rate of ``speed`` (2.0 takes half the time). The speech scales with it;
    the slack for a breath does too when speech is slowed, never below its
    normal size."""
    letters = syllables = 0
    for char in spoken:
        if char.isdigit():
            syllables += 1
        elif char.isalpha():
            if script_of(char) in SYLLABIC_SCRIPTS:
                syllables += 1
            else:
                letters += 1
    low = max(0.0, (letters * LETTER.low + syllables * SYLLABLE.low) / speed - SLACK_LOW_S)
    high = (letters * LETTER.high + syllables * SYLLABLE.high) / speed + SLACK_HIGH_S * max(1.0, 1.0 / speed)
    return Expected(letters, syllables, low, high)


@dataclass(frozen=True)
class Verdict:
    """One take, judged. ``problems`` is empty when it looks right;
    ``distance`` (0 when right) says how far outside the bounds it is, so the
    closest of several bad takes can be kept."""

    problems: tuple[str, ...]
    distance: float
    seconds: float  # the sounding span
    voiced_share: float  # of the span's windows
    clipped_share: float  # of the span's samples
    finite: bool

    @property
    def ok(self) -> bool:
        return not self.problems

    def reason(self) -> str:
        return "; ".join(self.problems)


def judge(samples: np.ndarray, sample_rate: int, spoken: str, speed: float = 1.0) -> Verdict:
    """Judge one take: an engine's raw output for the spoken text, asked for at ``speed``."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    bounds = expected(spoken, speed)
    problems: list[str] = []
    distance = 0.0

    finite = bool(np.isfinite(x).all())
    if not finite:
        problems.append("not finite: NaN or infinite samples")
        distance += _NOT_FINITE_DISTANCE
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)

    window = max(1, round(sample_rate * WINDOW_S))
    sound = _sound_windows(x, window)
    loud = np.flatnonzero(sound)
    if loud.size == 0:  # nothing at or above the threshold, so nothing clipped either
        if bounds.says_something:
            problems.append(f"silent: no sound for {bounds.describe()}")
            distance += _SILENT_DISTANCE
        return Verdict(tuple(problems), distance, 0.0, 0.0, 0.0, finite)

    span = sound[loud[0] : loud[-1] + 1]
    seconds = span.size * window / sample_rate
    voiced = float(np.count_nonzero(span)) / span.size
    # Of the span's samples: silence the engine left around the speech does not dilute it.
    clipped = float(np.count_nonzero(np.abs(x) >= CLIP_LEVEL)) / min(x.size, span.size * window)
    if seconds > bounds.high_s:
        problems.append(f"too long: {seconds:.1f} s of sound for {bounds.describe()} (at most {bounds.high_s:.1f} s)")
        distance += math.log(seconds / bounds.high_s)
    elif seconds < bounds.low_s:
        problems.append(f"too short: {seconds:.1f} s of sound for {bounds.describe()} (at least {bounds.low_s:.1f} s)")
        distance += math.log(bounds.low_s / seconds)
    if voiced < MIN_VOICED_SHARE:
        problems.append(f"mostly silence: sound in {voiced:.0%} of {seconds:.1f} s (at least {MIN_VOICED_SHARE:.0%})")
        distance += math.log(MIN_VOICED_SHARE / voiced)
    if clipped > MAX_CLIPPED_SHARE:
        problems.append(f"clipped: {clipped:.1%} of samples at full scale (at most {MAX_CLIPPED_SHARE:.1%})")
        distance += math.log(clipped / MAX_CLIPPED_SHARE)
    return Verdict(tuple(problems), distance, seconds, voiced, clipped, finite)


def _sound_windows(x: np.ndarray, window: int) -> np.ndarray:
    """Per window of ``window`` samples (the last one partial), whether its RMS reaches SOUND_DB."""
    count = -(-x.size // window)
    if count == 0:
        return np.zeros(0, dtype=bool)
    padded = np.zeros(count * window, dtype=np.float32)
    padded[: x.size] = x
    frames = padded.reshape(count, window)
    energy = np.einsum("ij,ij->i", frames, frames) / window  # mean square, without a squared copy
    return energy >= 10 ** (SOUND_DB / 10)


# -- the take record, carried in the segment's WAV ----------------------------------

RECORD_CHUNK = b"chrs"  # a RIFF chunk of Chorus's own; readers of WAV skip chunks they do not know


def take_record(takes: int, kept: Verdict) -> dict:
    """What the manifest says of a segment: its takes, and why the kept one
    still looks wrong (only when it does)."""
    record: dict = {"takes": takes}
    if not kept.ok:
        record["suspect"] = kept.reason()
    return record


def wav_with_record(wav: bytes, record: dict) -> bytes:
    """The WAV with the record appended as a chunk (RIFF size updated)."""
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a RIFF WAVE file")
    body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode("utf-8")
    chunk = RECORD_CHUNK + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")
    return wav[:4] + struct.pack("<I", len(wav) - 8 + len(chunk)) + wav[8:] + chunk


def record_in_wav(wav: bytes) -> dict | None:
    """The take record a WAV carries; None for one without a record or for
    anything that is not a well-formed RIFF WAVE."""
    if len(wav) < 12 or wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        return None
    position = 12
    while position + 8 <= len(wav):
        size = struct.unpack_from("<I", wav, position + 4)[0]
        if wav[position : position + 4] == RECORD_CHUNK:
            try:
                record = json.loads(wav[position + 8 : position + 8 + size])
            except ValueError:
                return None
            return record if isinstance(record, dict) else None
        position += 8 + size + size % 2
    return None
