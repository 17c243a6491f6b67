"""Mastering for audiobooks: pure numpy functions that change audio, segment
by segment. What they decide by is measured in ``loudness``.

* ``trim_silence`` and ``fade`` tidy one synthesised segment before it is joined
  to the pauses around it, so joins never click; ``prepare_segment`` chains them.
* ``pause`` is the silence between segments: a sentence, paragraph or chapter break.
* ``limit`` holds the true peak under a ceiling; ``calibrate_gain`` finds the
  gain that reaches a loudness although the limiter takes some of it back.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

from chorus.configs.mastering import Mastering
from chorus.tasks.audio.loudness import loudness, mono, true_magnitude

LOOKAHEAD_MS = 5.0  # the limiter sees peaks coming this far ahead
LIMITER_MARGIN_DB = 0.2  # aim this far under the ceiling: the gain curve itself adds a little
PAUSES = ("sentence", "paragraph", "chapter")


def trim_silence(
    samples: np.ndarray, sample_rate: int, threshold_db: float = -45.0, keep_ms: float = 40.0
) -> np.ndarray:
    """Drop leading and trailing silence, measured as 10 ms RMS windows below
    ``threshold_db`` dBFS, keeping ``keep_ms`` of margin each side. An input
    with no window above the threshold comes back empty."""
    samples = mono(samples)
    start, end = sound_bounds(samples, sample_rate, threshold_db, keep_ms)
    return samples[start:end]


def sound_bounds(
    samples: np.ndarray, sample_rate: int, threshold_db: float = -45.0, keep_ms: float = 40.0
) -> tuple[int, int]:
    """The (start, end) samples ``trim_silence`` keeps; (0, 0) when it keeps nothing."""
    samples = mono(samples)
    window = max(1, round(sample_rate * 0.010))
    count = samples.size // window + (1 if samples.size % window else 0)
    if count == 0:
        return 0, 0
    padded = np.zeros(count * window, dtype=np.float64)
    padded[: samples.size] = samples
    rms = np.sqrt(np.mean(padded.reshape(count, window) ** 2, axis=1))
    loud = np.flatnonzero(rms >= 10 ** (threshold_db / 20))
    if loud.size == 0:
        return 0, 0
    keep = round(sample_rate * keep_ms / 1000)
    return int(max(0, loud[0] * window - keep)), int(min(samples.size, (loud[-1] + 1) * window + keep))


def fade(samples: np.ndarray, sample_rate: int, ms: float = 8.0) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of ``ms`` each (shortened to half the
    signal when it is shorter), so the ends meet silence at zero."""
    samples = mono(samples)
    length = min(round(sample_rate * ms / 1000), samples.size // 2)
    if length < 1:
        return samples.copy()
    out = samples.copy() if np.issubdtype(samples.dtype, np.floating) else samples.astype(np.float32)
    # 0 at the outer sample, rising to just below 1 at the inner one.
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(length) / length)).astype(out.dtype)
    out[:length] *= ramp
    out[-length:] *= ramp[::-1]
    return out


def prepare_segment(samples: np.ndarray, sample_rate: int, config: Mastering = Mastering()) -> np.ndarray:
    """Trim a synthesised segment's silent ends and fade them (float32)."""
    return prepare_segment_at(samples, sample_rate, config)[0]


def prepare_segment_at(
    samples: np.ndarray, sample_rate: int, config: Mastering = Mastering()
) -> tuple[np.ndarray, int]:
    """``prepare_segment``, and where in ``samples`` its result starts (the
    samples trimmed off the front), so times in the engine's output can follow."""
    samples = mono(samples)
    start, end = sound_bounds(samples, sample_rate, config.trim_threshold_db, config.trim_keep_ms)
    return fade(samples[start:end], sample_rate, config.fade_ms).astype(np.float32, copy=False), start


def pause(config: Mastering, kind: str, sample_rate: int) -> np.ndarray:
    """Silence for a break of one of ``PAUSES``: 'sentence', 'paragraph' or 'chapter'."""
    ms = {"sentence": config.sentence_pause_ms, "paragraph": config.paragraph_pause_ms,
          "chapter": config.chapter_pause_ms}[kind]
    return np.zeros(round(sample_rate * ms / 1000), dtype=np.float32)


def limit(samples: np.ndarray, sample_rate: int, ceiling_dbfs: float, lookahead_ms: float = LOOKAHEAD_MS) -> np.ndarray:
    """Lookahead true-peak limiter: nothing above ``ceiling_dbfs``, between samples either.

    Speech reaching −18 LUFS usually has peaks above −3 dBFS, so loudness and
    the peak ceiling can only both hold if the few peaks are turned down. The
    gain each sample needs is held at its minimum over ± the lookahead, then
    averaged over a window half as wide: the result never exceeds the needed
    gain (every averaged value is a minimum over a window containing the
    sample) and changes over milliseconds, not from one sample to the next.
    """
    return limit_with_peak(samples, sample_rate, ceiling_dbfs, lookahead_ms)[0]


def limit_with_peak(
    samples: np.ndarray, sample_rate: int, ceiling_dbfs: float, lookahead_ms: float = LOOKAHEAD_MS
) -> tuple[np.ndarray, float]:
    """``limit``, and the true peak of what it returns (linear): the limiter's
    own oversampled magnitudes times the gain it applied, which changes over
    milliseconds, so the oversampling is not run a second time to measure it."""
    ceiling = 10 ** (ceiling_dbfs / 20)
    magnitude = true_magnitude(samples, floor=min(ceiling, float(np.abs(samples).max(initial=0.0))))
    applied = _limiter_gain(magnitude, sample_rate, ceiling, lookahead_ms)
    if applied is None:
        return samples, float(magnitude.max()) if magnitude.size else 0.0
    return (samples * applied).astype(np.float32), float((magnitude * applied).max())


def _limiter_gain(magnitude: np.ndarray, sample_rate: int, ceiling: float, lookahead_ms: float) -> np.ndarray | None:
    """The limiter's gain per sample for these true magnitudes; None where nothing passes the ceiling."""
    if magnitude.size == 0 or magnitude.max() <= ceiling:
        return None
    needed = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
    width = max(1, int(sample_rate * lookahead_ms / 1000))
    held = minimum_filter1d(needed, size=2 * width + 1, mode="nearest")
    smooth = uniform_filter1d(held, size=width, mode="nearest")
    return np.minimum(smooth, needed)


def calibrate_gain(sample: list[np.ndarray], rate: int, wanted_db: float, ceiling_dbfs: float) -> float:
    """The gain (dB) at which the limited sample gains ``wanted_db`` of loudness.

    Limiting costs loudness, more the harder it works, so the gain is found by
    a few secant steps on the calibration sample (the loudness gained by the
    sample stands for the loudness gained by the book)."""
    joined = np.concatenate(sample)
    base = loudness(joined, rate)
    # The magnitudes scale with the gain: found once (exact wherever the
    # highest gain tried could take them over the ceiling), not at every step.
    ceiling = 10 ** (ceiling_dbfs / 20)
    most = wanted_db + 12.0  # never more than 12 dB of limiting
    magnitude = true_magnitude(joined, floor=ceiling / 10 ** (most / 20))

    def gained(gain_db: float) -> float:
        scale = 10 ** (gain_db / 20)
        applied = _limiter_gain(magnitude * scale, rate, ceiling, LOOKAHEAD_MS)
        limited = joined * scale if applied is None else joined * scale * applied
        return loudness(limited, rate) - base

    low, high = wanted_db, wanted_db + 3.0
    low_value, high_value = gained(low), gained(high)
    for _ in range(6):
        if abs(high_value - wanted_db) < 0.05 or high_value == low_value:
            break
        low, high = high, min(most, high + (wanted_db - high_value) * (high - low) / (high_value - low_value))
        low_value, high_value = high_value, gained(high)
    return high
