"""STAND-IN: ``Resample`` as a module, like torchaudio's."""

from __future__ import annotations

import torch

from torchaudio.functional import resample


class Resample(torch.nn.Module):
    def __init__(self, orig_freq: int = 16000, new_freq: int = 16000, resampling_method: str = "sinc_interp_hann",
                 lowpass_filter_width: int = 6, rolloff: float = 0.99, beta=None, dtype=None) -> None:
        super().__init__()
        self.orig_freq, self.new_freq = int(orig_freq), int(new_freq)
        self.resampling_method, self.lowpass_filter_width, self.rolloff = resampling_method, lowpass_filter_width, rolloff

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return resample(waveform, self.orig_freq, self.new_freq, self.lowpass_filter_width, self.rolloff,
                        self.resampling_method)
