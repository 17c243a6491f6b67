"""Mastering for audiobooks: pure numpy functions that work segment by segment.

* ``trim_silence`` and ``fade`` tidy one synthesised segment before it is joined
  to the pauses around it, so joins never click.
* ``LoudnessMeter`` measures ITU-R BS.1770-4 integrated loudness and true peak
  over a stream fed in chunks of any size; it keeps one float per 100 ms, never
  the audio.
* ``SegmentLevel`` is one segment's measurement (its gating blocks and true
  peak), taken once when the segment is synthesised and kept with it in the
  cache: a book's loudness is then found from its segments' levels, with no
  pass over the audio (``loudness_of``).
* ``gain_for`` turns a measurement into one linear gain that reaches the target
  loudness without pushing the true peak above the ceiling.
* ``Mastering`` holds the settings; ``prepare_segment`` and ``normalize`` chain
  the steps for one segment.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyloudnorm
import scipy.signal
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d

from chorus.configs.mastering import Mastering

BLOCK_SECONDS = 0.4  # BS.1770 gating block
STEP_DIVISIONS = 4  # 75 % overlap: a block is four 100 ms steps
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLE = 4  # true peak
LOOKAHEAD_MS = 5.0  # the limiter sees peaks coming this far ahead
_TAPS_PER_PHASE = 24
def _as_mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return samples


def trim_silence(
    samples: np.ndarray, sample_rate: int, threshold_db: float = -45.0, keep_ms: float = 40.0
) -> np.ndarray:
    """Drop leading and trailing silence, measured as 10 ms RMS windows below
    ``threshold_db`` dBFS, keeping ``keep_ms`` of margin each side. An input
    with no window above the threshold comes back empty."""
    samples = _as_mono(samples)
    window = max(1, round(sample_rate * 0.010))
    count = samples.size // window + (1 if samples.size % window else 0)
    if count == 0:
        return samples[:0]
    padded = np.zeros(count * window, dtype=np.float64)
    padded[: samples.size] = samples
    rms = np.sqrt(np.mean(padded.reshape(count, window) ** 2, axis=1))
    loud = np.flatnonzero(rms >= 10 ** (threshold_db / 20))
    if loud.size == 0:
        return samples[:0]
    keep = round(sample_rate * keep_ms / 1000)
    start = max(0, loud[0] * window - keep)
    end = min(samples.size, (loud[-1] + 1) * window + keep)
    return samples[start:end]


def fade(samples: np.ndarray, sample_rate: int, ms: float = 8.0) -> np.ndarray:
    """Raised-cosine fade-in and fade-out of ``ms`` each (shortened to half the
    signal when it is shorter), so the ends meet silence at zero."""
    samples = _as_mono(samples)
    length = min(round(sample_rate * ms / 1000), samples.size // 2)
    if length < 1:
        return samples.copy()
    out = samples.copy() if np.issubdtype(samples.dtype, np.floating) else samples.astype(np.float32)
    # 0 at the outer sample, rising to just below 1 at the inner one.
    ramp = (0.5 - 0.5 * np.cos(np.pi * np.arange(length) / length)).astype(out.dtype)
    out[:length] *= ramp
    out[-length:] *= ramp[::-1]
    return out


def _k_weighting_sos(sample_rate: int) -> np.ndarray:
    """The two K-weighting biquads (high shelf, then high pass) exactly as
    pyloudnorm defines them for this rate, as second-order sections."""
    filters = pyloudnorm.Meter(sample_rate)._filters  # the definition, not a copy of it
    sections = []
    for stage in filters.values():
        b = np.asarray(stage.b, dtype=np.float64) * stage.passband_gain
        a = np.asarray(stage.a, dtype=np.float64)
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.array(sections)


@lru_cache(maxsize=1)
def _oversampling_filter() -> np.ndarray:
    """Windowed-sinc low-pass for 4x interpolation, cut at the input's Nyquist
    frequency (gain 4 makes up for zero stuffing). Odd length with the sinc's
    zeros on the input grid: phase 0 passes the input samples through, so the
    true peak is never below the sample peak. 0.04 dB worst case under the
    real peak for a sine at fs/4 (the 4x grid), < 0.01 dB up to 0.45 fs."""
    taps = OVERSAMPLE * _TAPS_PER_PHASE + 1
    return OVERSAMPLE * scipy.signal.firwin(taps, 1 / OVERSAMPLE, window=("kaiser", 7.0))


def to_db(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else float("-inf")


class LoudnessMeter:
    """Streaming BS.1770-4 integrated loudness and true peak of a mono stream.

    ``add`` takes chunks of any size; filter state, the partial 100 ms step and
    the interpolator history carry over. Memory is one float per 100 ms step.
    """

    def __init__(self, sample_rate: int, true_peak: bool = True) -> None:
        self.sample_rate = sample_rate
        # Without it, only loudness is measured: the 4x oversampling is most of the cost.
        self.measures_true_peak = true_peak
        self.samples_seen = 0
        self._sos = _k_weighting_sos(sample_rate)
        self._zi = np.zeros((self._sos.shape[0], 2))
        self._block_length = BLOCK_SECONDS * sample_rate
        # Step k spans samples [floor(k*T/4), floor((k+1)*T/4)) with T the block length.
        self._step_index = 0
        self._step_sum = 0.0
        self._recent_steps: list[float] = []
        self._blocks = array("d")  # mean square of each complete 400 ms block
        self._peak = 0.0  # sample peak of the 4x oversampled signal
        self._fir = _oversampling_filter()
        self._history = np.zeros(_TAPS_PER_PHASE)  # 4 * 24 >= len(fir) - 1

    def _step_end(self, k: int) -> int:
        return int(math.floor((k + 1) * self._block_length / STEP_DIVISIONS + 1e-9))

    def add(self, samples: np.ndarray) -> None:
        x = _as_mono(samples).astype(np.float64, copy=False)
        if x.size == 0:
            return
        if self.measures_true_peak:
            self._add_true_peak(x)
        weighted, self._zi = scipy.signal.sosfilt(self._sos, x, zi=self._zi)
        squares = weighted * weighted
        position = self.samples_seen  # absolute index of squares[0]
        self.samples_seen += x.size
        while position < self.samples_seen:
            end = self._step_end(self._step_index)
            take = min(end, self.samples_seen) - position
            offset = position - (self.samples_seen - x.size)
            self._step_sum += float(squares[offset : offset + take].sum())
            position += take
            if position == end:
                self._close_step()

    def _close_step(self) -> None:
        self._recent_steps.append(self._step_sum)
        self._step_sum = 0.0
        self._step_index += 1
        if len(self._recent_steps) == STEP_DIVISIONS:
            self._blocks.append(sum(self._recent_steps) / self._block_length)
            self._recent_steps.pop(0)

    def _add_true_peak(self, x: np.ndarray) -> None:
        extended = np.concatenate([self._history, x])
        upsampled = scipy.signal.upfirdn(self._fir, extended, up=OVERSAMPLE)
        # Outputs from here to the end of the new samples depend only on known input.
        start = OVERSAMPLE * self._history.size
        stop = OVERSAMPLE * extended.size
        self._peak = max(self._peak, float(np.abs(upsampled[start:stop]).max()))
        self._history = extended[-self._history.size :].copy()

    @property
    def blocks(self) -> np.ndarray:
        """Mean square of each complete 400 ms block so far (a copy)."""
        return np.array(self._blocks, dtype=np.float64)

    def integrated_lufs(self) -> float:
        """Gated integrated loudness in LUFS; -inf when every block is below the
        absolute gate (silence) or no 400 ms block is complete yet."""
        return gated_loudness(np.frombuffer(self._blocks, dtype=np.float64))

    def true_peak_linear(self) -> float:
        """4x oversampled peak, including the interpolator's ring-out past the
        last sample (computed from a copy, so more chunks may follow)."""
        if not self.measures_true_peak:
            raise ValueError("this meter measures loudness only")
        if self.samples_seen == 0:
            return 0.0
        tail = np.concatenate([self._history, np.zeros(_TAPS_PER_PHASE + 1)])
        upsampled = scipy.signal.upfirdn(self._fir, tail, up=OVERSAMPLE)
        start = OVERSAMPLE * self._history.size
        return max(self._peak, float(np.abs(upsampled[start:]).max()))

    def true_peak_dbfs(self) -> float:
        return to_db(self.true_peak_linear())


def gated_loudness(blocks: np.ndarray) -> float:
    """BS.1770-4 integrated loudness (LUFS) of 400 ms blocks' mean squares:
    the absolute gate, then the relative gate; -inf when nothing passes."""
    if blocks.size == 0:
        return float("-inf")
    z = np.asarray(blocks, dtype=np.float64)
    with np.errstate(divide="ignore"):
        loudness = -0.691 + 10 * np.log10(z)
    gated = z[loudness >= ABSOLUTE_GATE_LUFS]
    if gated.size == 0:
        return float("-inf")
    relative = -0.691 + 10 * np.log10(gated.mean()) + RELATIVE_GATE_LU
    final = z[(loudness > relative) & (loudness >= ABSOLUTE_GATE_LUFS)]
    if final.size == 0:
        return float("-inf")
    return float(-0.691 + 10 * np.log10(final.mean()))


@dataclass(frozen=True)
class SegmentLevel:
    """One segment's loudness measurement, taken once when it is synthesised.

    ``blocks`` are the mean squares of its K-weighted 400 ms gating blocks,
    measured with ``pad_s`` of silence each side (in a book a pause surrounds
    every segment, and the blocks across its edges count as they will there);
    ``true_peak`` is its 4x oversampled peak (linear). The gating blocks of a
    whole book are, to within the blocks that straddle a pause, its segments'
    blocks together, so a book's loudness and peak come from its segments'
    levels (``loudness_of``) without reading their audio again."""

    sample_rate: int
    blocks: np.ndarray  # float32
    true_peak: float

    _HEADER = struct.Struct("<2sIf")  # b"L1", sample rate, true peak; then the blocks (float32)

    @classmethod
    def of(cls, samples: np.ndarray, sample_rate: int, pad_s: float = 0.25) -> SegmentLevel:
        meter = LoudnessMeter(sample_rate, true_peak=False)
        pad = np.zeros(round(pad_s * sample_rate), dtype=np.float32)
        for part in (pad, samples, pad):
            meter.add(part)
        return cls(sample_rate, meter.blocks.astype(np.float32), true_peak(samples, sample_rate))

    def to_bytes(self) -> bytes:
        return self._HEADER.pack(b"L1", self.sample_rate, self.true_peak) + self.blocks.astype("<f4").tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SegmentLevel:
        tag, rate, peak = cls._HEADER.unpack_from(data)
        if tag != b"L1":
            raise ValueError(f"not a segment level record: {data[:2]!r}")
        return cls(rate, np.frombuffer(data, dtype="<f4", offset=cls._HEADER.size), peak)


def loudness_of(levels: Iterable[SegmentLevel]) -> tuple[float, float]:
    """(integrated LUFS, true peak linear) of segments joined by pauses, from their levels."""
    levels = list(levels)
    if not levels:
        return float("-inf"), 0.0
    blocks = np.concatenate([level.blocks for level in levels])
    return gated_loudness(blocks), max(level.true_peak for level in levels)


def measure(samples: np.ndarray, sample_rate: int) -> tuple[float, float]:
    """(integrated LUFS, true peak dBFS) of a whole signal."""
    meter = LoudnessMeter(sample_rate)
    meter.add(samples)
    return meter.integrated_lufs(), meter.true_peak_dbfs()


def gain_for(
    measured_lufs: float,
    true_peak_dbfs: float,
    target_lufs: float = -18.0,
    max_true_peak_dbfs: float = -3.0,
) -> float:
    """Linear gain that brings ``measured_lufs`` to ``target_lufs`` but keeps
    the true peak at or below ``max_true_peak_dbfs``. Silence (-inf) gets 1."""
    if not math.isfinite(measured_lufs):
        return 1.0
    gain_db = target_lufs - measured_lufs
    if math.isfinite(true_peak_dbfs) and true_peak_dbfs + gain_db > max_true_peak_dbfs:
        gain_db = max_true_peak_dbfs - true_peak_dbfs
    return float(10 ** (gain_db / 20))


def prepare_segment(samples: np.ndarray, sample_rate: int, config: Mastering = Mastering()) -> np.ndarray:
    """Trim a synthesised segment's silent ends and fade them (float32)."""
    trimmed = trim_silence(samples, sample_rate, config.trim_threshold_db, config.trim_keep_ms)
    return fade(trimmed, sample_rate, config.fade_ms).astype(np.float32, copy=False)


def normalize(
    samples: np.ndarray, sample_rate: int, config: Mastering = Mastering(), audio_format: str | None = None
) -> np.ndarray:
    """Apply the one gain that takes this signal to the target loudness within
    the true-peak ceiling (lowered by ``lossy_headroom_db`` for a lossy
    ``audio_format``). Signals shorter than a 400 ms block are left as they
    are (no loudness can be measured)."""
    lufs, peak = measure(samples, sample_rate)
    gain = gain_for(lufs, peak, config.target_lufs, config.ceiling_dbfs(audio_format))
    return (np.asarray(samples, dtype=np.float32) * np.float32(gain)).astype(np.float32, copy=False)


def pause(config: Mastering, kind: str, sample_rate: int) -> np.ndarray:
    """Silence for a 'sentence', 'paragraph' or 'chapter' break."""
    ms = {"sentence": config.sentence_pause_ms, "paragraph": config.paragraph_pause_ms,
          "chapter": config.chapter_pause_ms}[kind]
    return np.zeros(round(sample_rate * ms / 1000), dtype=np.float32)


@lru_cache(maxsize=1)
def _branches() -> tuple[np.ndarray, float]:
    """The interpolator's branches 1..3 as rows over an input window (phase 0
    is the input itself: the filter's zeros fall on the input grid), and the
    largest sum of a branch's absolute taps: no interpolated value exceeds
    that times the largest input magnitude in its window."""
    fir = _oversampling_filter()
    rows = np.stack([fir[phase::OVERSAMPLE][:_TAPS_PER_PHASE] for phase in range(1, OVERSAMPLE)])
    return rows[:, ::-1].copy(), float(np.abs(rows).sum(axis=1).max())


def _true_magnitude(samples: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per input sample, the largest magnitude of the 4x oversampled signal
    around it: the limiter must hold true peaks, not only sample peaks.

    Exact wherever it may exceed ``floor``; elsewhere the sample's own
    magnitude, which is then at most the exact value, and the exact value at
    most ``floor``. The interpolated values are computed only where the
    largest input magnitude of their window, times the branches' gain bound,
    passes ``floor`` (for a segment's true peak, about 2 % of speech); where
    that is more than an eighth of the samples, all are filtered at once."""
    x = np.asarray(samples, dtype=np.float64)
    magnitude = np.abs(x)
    if x.size == 0:
        return magnitude
    rows, reach = _branches()
    delay = (_oversampling_filter().size - 1) // (2 * OVERSAMPLE)  # the window of sample i: i - delay + 1 .. i + delay
    window_max = maximum_filter1d(magnitude, size=2 * delay, origin=-1, mode="constant")
    candidates = np.flatnonzero(window_max * reach > floor)
    if candidates.size == 0:
        return magnitude
    padded = np.concatenate([np.zeros(delay), x, np.zeros(delay)])
    if candidates.size > x.size // 8:  # gathering windows costs more than filtering everything
        for row in rows:  # one interpolated phase each; upfirdn would also compute the known one
            np.maximum(magnitude, np.abs(np.correlate(padded[1:], row, "valid")), out=magnitude)
        return magnitude
    for start in range(0, candidates.size, 65536):  # bounded memory: windows of 24 samples each
        chosen = candidates[start : start + 65536]
        windows = padded[chosen[:, None] + np.arange(1, 2 * delay + 1)]
        values = np.abs(windows @ rows.T).max(axis=1)
        magnitude[chosen] = np.maximum(magnitude[chosen], values)
    return magnitude


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
    magnitude = _true_magnitude(samples, floor=min(ceiling, float(np.abs(samples).max(initial=0.0))))
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


def true_peak(samples: np.ndarray, sample_rate: int) -> float:
    """The 4x oversampled peak of a whole signal (linear), including the
    interpolator's ring-out past its ends. Only windows that could top the
    sample peak are interpolated."""
    x = np.concatenate([np.zeros(_TAPS_PER_PHASE), np.asarray(samples, dtype=np.float64), np.zeros(_TAPS_PER_PHASE)])
    return float(_true_magnitude(x, floor=float(np.abs(x).max())).max())


def loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of a whole signal, without its true peak."""
    meter = LoudnessMeter(sample_rate, true_peak=False)
    meter.add(samples)
    return meter.integrated_lufs()


LIMITER_MARGIN_DB = 0.2  # aim this far under the ceiling: the gain curve itself adds a little


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
    magnitude = _true_magnitude(joined, floor=ceiling / 10 ** (most / 20))

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
