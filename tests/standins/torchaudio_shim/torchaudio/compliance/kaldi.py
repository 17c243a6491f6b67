"""STAND-IN: Kaldi's log-mel filterbank (``compute-fbank-feats`` defaults), as
torchaudio.compliance.kaldi.fbank computes it for what upstream CosyVoice
passes: 25 ms Povey windows every 10 ms (snip_edges), DC offset removed,
pre-emphasis 0.97, power spectrum of a 512-point FFT, triangular mel bins from
20 Hz to Nyquist, natural log floored at float32 epsilon. No dithering, VTLN,
energy or mean subtraction: upstream passes ``dither=0`` and uses the defaults
for the rest, and the options it never sets are refused rather than ignored."""

from __future__ import annotations

import torch


def _mel(freq):
    return 1127.0 * torch.log(1.0 + torch.as_tensor(freq, dtype=torch.float32) / 700.0)


def _mel_banks(bins: int, padded: int, rate: float, low: float, high: float) -> torch.Tensor:
    fft_bins = padded // 2
    nyquist = 0.5 * rate
    if high <= 0.0:
        high += nyquist
    mel_low, mel_high = float(_mel(low)), float(_mel(high))
    delta = (mel_high - mel_low) / (bins + 1)
    b = torch.arange(bins, dtype=torch.float32).unsqueeze(1)
    left, center, right = mel_low + b * delta, mel_low + (b + 1.0) * delta, mel_low + (b + 2.0) * delta
    mel = _mel(rate / padded * torch.arange(fft_bins, dtype=torch.float32)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))  # the Nyquist bin gets no weight


def fbank(waveform: torch.Tensor, blackman_coeff: float = 0.42, channel: int = -1, dither: float = 0.0,
          energy_floor: float = 1.0, frame_length: float = 25.0, frame_shift: float = 10.0, high_freq: float = 0.0,
          htk_compat: bool = False, low_freq: float = 20.0, min_duration: float = 0.0, num_mel_bins: int = 23,
          preemphasis_coefficient: float = 0.97, raw_energy: bool = True, remove_dc_offset: bool = True,
          round_to_power_of_two: bool = True, sample_frequency: float = 16000.0, snip_edges: bool = True,
          subtract_mean: bool = False, use_energy: bool = False, use_log_fbank: bool = True, use_power: bool = True,
          vtln_high: float = -500.0, vtln_low: float = 100.0, vtln_warp: float = 1.0,
          window_type: str = "povey") -> torch.Tensor:
    if dither != 0.0 or use_energy or subtract_mean or htk_compat or vtln_warp != 1.0 or window_type != "povey" \
            or not snip_edges or not use_log_fbank or not use_power or not round_to_power_of_two:
        raise NotImplementedError("the torchaudio stand-in's fbank has only the options upstream CosyVoice uses")
    wave = waveform[max(channel, 0), :]
    shift = int(sample_frequency * frame_shift * 0.001)
    size = int(sample_frequency * frame_length * 0.001)
    padded = 1 << (size - 1).bit_length()
    if wave.numel() < size:
        return torch.empty(0, num_mel_bins, dtype=waveform.dtype)
    frames = 1 + (wave.numel() - size) // shift
    strided = wave.contiguous().as_strided((frames, size), (shift, 1))
    if remove_dc_offset:
        strided = strided - strided.mean(dim=1, keepdim=True)
    previous = torch.nn.functional.pad(strided.unsqueeze(0), (1, 0), mode="replicate").squeeze(0)
    strided = strided - preemphasis_coefficient * previous[:, :-1]
    window = torch.hann_window(size, periodic=False, dtype=waveform.dtype).pow(0.85)
    strided = torch.nn.functional.pad(strided * window, (0, padded - size))
    power = torch.fft.rfft(strided).abs().pow(2.0)
    energies = power @ _mel_banks(num_mel_bins, padded, sample_frequency, low_freq, high_freq).t().to(power.dtype)
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()


__all__ = ["fbank"]
