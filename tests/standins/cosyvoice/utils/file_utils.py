"""STAND-IN for ``cosyvoice.utils.file_utils``: ``load_wav`` reads with soundfile
and resamples crudely (linear interpolation); the real one uses torchaudio."""

from __future__ import annotations

import numpy as np
import soundfile

from cosyvoice.tensor import StandInTensor

load_calls: list[tuple[str, int]] = []  # (path, target_sr) of every call


def load_wav(wav, target_sr: int) -> StandInTensor:
    load_calls.append((str(wav), target_sr))
    samples, rate = soundfile.read(str(wav), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if rate != target_sr:
        n_out = int(round(mono.size * target_sr / rate))
        mono = np.interp(np.arange(n_out) * rate / target_sr, np.arange(mono.size), mono).astype(np.float32)
    return StandInTensor(mono[None, :])
