"""Measuring audio, never changing it: ITU-R BS.1770-4 loudness and true peak.

* ``LoudnessMeter`` measures integrated loudness and true peak over a stream
  fed in chunks of any size; it keeps one float per 100 ms, never the audio.
* ``SegmentLevel`` is one segment's measurement (its gating blocks and true
  peak), taken once when the segment is synthesised and kept with it in the
  cache: a book's loudness is then found from its segments' levels, with no
  pass over the audio (``loudness_of``).
* ``true_magnitude`` and ``true_peak`` give the 4x oversampled magnitude of a
  whole signal, which the limiter (``mastering``) must hold below its ceiling.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.signal
from pyloudnorm.iirfilter import IIRfilter

BLOCK_SECONDS = 0.4  # BS.1770 gating block
STEP_DIVISIONS = 4  # 75 % overlap: a block is four 100 ms steps
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
OVERSAMPLE = 4  # true peak
_TAPS_PER_PHASE = 24
# BS.1770's K-weighting as pyloudnorm, the reference this meter is tested
# against, designs it for any rate: a +4 dB high shelf at 1500 Hz, then a
# high pass at 38 Hz (both RBJ cookbook biquads).
_K_WEIGHTING = (  # (gain dB, Q, frequency Hz, shape)
    (4.0, 1 / math.sqrt(2), 1500.0, "high_shelf"),
    (0.0, 0.5, 38.0, "high_pass"),
)


def mono(samples: np.ndarray) -> np.ndarray:
    """One channel: the mean of the channels of a 2-D (samples, channels) array."""
    samples = np.asarray(samples)
    if samples.ndim > 1:
        samples = samples.mean(axis=1)
    return samples


def to_db(value: float) -> float:
    return 20 * math.log10(value) if value > 0 else float("-inf")


@lru_cache(maxsize=8)
def _k_weighting_sos(sample_rate: int) -> np.ndarray:
    """The two K-weighting biquads (high shelf, then high pass) for this rate,
    as second-order sections, from pyloudnorm's public filter design."""
    sections = []
    for gain_db, q, frequency, shape in _K_WEIGHTING:
        b, a = IIRfilter(gain_db, q, frequency, sample_rate, shape).generate_coefficients()
        sections.append(np.concatenate([b / a[0], a / a[0]]))
    return np.array(sections)


@lru_cache(maxsize=1)
def _oversampling_filter() -> np.ndarray:
    """Windowed-sinc low-pass for 4x interpolation, cut at the input's Nyquist
    frequency (gain 4 makes up for zero stuffing). Odd length with the sinc's
    zeros on the input grid: phase 0 passes the input samples through, so the
    true peak is never below the sample peak. At most 0.04 dB under the real
    peak for a sine at fs/4 (the 4x grid), under 0.01 dB up to 0.45 fs."""
    taps = OVERSAMPLE * _TAPS_PER_PHASE + 1
    return OVERSAMPLE * scipy.signal.firwin(taps, 1 / OVERSAMPLE, window=("kaiser", 7.0))


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
        x = mono(samples).astype(np.float64, copy=False)
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


def gating_blocks(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The mean squares of a whole signal's 400 ms gating blocks, as a
    ``LoudnessMeter`` fed it in one piece finds them, by array operations
    rather than a loop over steps: the K-weighting, then each 100 ms step's
    sum of squares, four steps a block."""
    x = mono(samples).astype(np.float64, copy=False)
    block_length = BLOCK_SECONDS * sample_rate
    ends = np.floor(np.arange(1, x.size * STEP_DIVISIONS / block_length + 2) * block_length / STEP_DIVISIONS + 1e-9)
    ends = ends[ends <= x.size].astype(np.int64)  # the meter's _step_end; samples past the last whole step wait
    if ends.size < STEP_DIVISIONS:
        return np.zeros(0)
    weighted = scipy.signal.sosfilt(_k_weighting_sos(sample_rate), x[: ends[-1]])
    step_sums = np.add.reduceat(weighted * weighted, np.concatenate([[0], ends[:-1]]))
    return np.lib.stride_tricks.sliding_window_view(step_sums, STEP_DIVISIONS).sum(axis=1) / block_length


def loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of a whole signal, without its true peak."""
    meter = LoudnessMeter(sample_rate, true_peak=False)
    meter.add(samples)
    return meter.integrated_lufs()


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
        pad = np.zeros(round(pad_s * sample_rate))
        padded = np.concatenate([pad, mono(samples), pad])
        return cls(sample_rate, gating_blocks(padded, sample_rate).astype(np.float32), true_peak(samples, sample_rate))

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


@lru_cache(maxsize=1)
def _branches() -> tuple[np.ndarray, float]:
    """The interpolator's branches 1..3 as rows over an input window (phase 0
    is the input itself: the filter's zeros fall on the input grid), and the
    largest sum of a branch's absolute taps: no interpolated value exceeds
    that times the largest input magnitude in its window."""
    fir = _oversampling_filter()
    rows = np.stack([fir[phase::OVERSAMPLE][:_TAPS_PER_PHASE] for phase in range(1, OVERSAMPLE)])
    return rows[:, ::-1].copy(), float(np.abs(rows).sum(axis=1).max())


def true_magnitude(samples: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per input sample, the largest magnitude of the 4x oversampled signal
    around it: a limiter must hold true peaks, not only sample peaks.

    Exact wherever it may exceed ``floor``; elsewhere the sample's own
    magnitude, which is then at most the exact value, and the exact value at
    most ``floor``. No interpolated value exceeds the branches' gain bound
    times the largest input magnitude in its window, so values are computed
    only in the windows holding a sample whose magnitude, times that bound,
    passes ``floor`` (marked around each such sample, not found by a sliding
    maximum); where such samples, or the samples whose windows hold them,
    are more than an eighth of all, everything is filtered at once."""
    x = np.asarray(samples, dtype=np.float64)
    magnitude = np.abs(x)
    if x.size == 0:
        return magnitude
    rows, reach = _branches()
    delay = (_oversampling_filter().size - 1) // (2 * OVERSAMPLE)  # the window of sample i: i - delay + 1 .. i + delay
    loud = np.flatnonzero(magnitude * reach > floor)
    if loud.size == 0:
        return magnitude
    padded = np.concatenate([np.zeros(delay), x, np.zeros(delay)])
    candidates = None
    if loud.size <= x.size // 8:
        marked = np.zeros(x.size + 2 * delay, dtype=bool)
        for offset in range(2 * delay):  # sample j lies in the windows of samples j - delay .. j + delay - 1
            marked[loud + offset] = True
        candidates = np.flatnonzero(marked[delay : delay + x.size])
    if candidates is None or candidates.size > x.size // 8:  # gathering windows costs more than filtering everything
        for row in rows:  # one interpolated phase each; upfirdn would also compute the known one
            np.maximum(magnitude, np.abs(np.correlate(padded[1:], row, "valid")), out=magnitude)
        return magnitude
    for start in range(0, candidates.size, 65536):  # bounded memory: windows of 24 samples each
        chosen = candidates[start : start + 65536]
        windows = padded[chosen[:, None] + np.arange(1, 2 * delay + 1)]
        values = np.abs(windows @ rows.T).max(axis=1)
        magnitude[chosen] = np.maximum(magnitude[chosen], values)
    return magnitude


def true_peak(samples: np.ndarray, sample_rate: int) -> float:
    """The 4x oversampled peak of a whole signal (linear), including the
    interpolator's ring-out past its ends. Only windows that could top the
    sample peak are interpolated."""
    x = np.concatenate([np.zeros(_TAPS_PER_PHASE), np.asarray(samples, dtype=np.float64), np.zeros(_TAPS_PER_PHASE)])
    return float(true_magnitude(x, floor=float(np.abs(x).max())).max())
