"""STAND-IN: ``resample`` as torchaudio computes it (band-limited sinc
interpolation with a Hann window), written from its documented algorithm."""

from __future__ import annotations

import math

import torch


def _sinc_resample_kernel(orig: int, new: int, width_zero_crossings: int, rolloff: float, dtype: torch.dtype):
    base = min(orig, new) * rolloff
    width = math.ceil(width_zero_crossings * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t = (t * base).clamp(-width_zero_crossings, width_zero_crossings)
    window = torch.cos(t * math.pi / width_zero_crossings / 2) ** 2
    t = t * math.pi
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t) * window * (base / orig)
    return kernel.to(dtype), width


def resample(waveform: torch.Tensor, orig_freq: int, new_freq: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99, resampling_method: str = "sinc_interp_hann", beta=None) -> torch.Tensor:
    if resampling_method != "sinc_interp_hann":
        raise NotImplementedError(f"the torchaudio stand-in has only sinc_interp_hann, not {resampling_method}")
    if orig_freq == new_freq:
        return waveform
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    kernel, width = _sinc_resample_kernel(orig, new, lowpass_filter_width, rolloff, waveform.dtype)
    shape = waveform.shape
    flat = waveform.reshape(-1, shape[-1])
    length = flat.shape[-1]
    padded = torch.nn.functional.pad(flat, (width, width + orig))
    out = torch.nn.functional.conv1d(padded[:, None], kernel, stride=orig)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)
    out = out[..., : math.ceil(new * length / orig)]
    return out.reshape(shape[:-1] + out.shape[-1:])
