"""STAND-IN for torchaudio: only the functions upstream CosyVoice calls at
inference time, in torch + soundfile. Not torchaudio.

Why it exists: no CPU build of torchaudio exists for the torch (2.13.0, CPU) on
the test machines, PyPI's torchaudio releases are CUDA builds pinned to other
torch versions, and from 2.9 ``torchaudio.load`` needs TorchCodec anyway. GPU
hosts install the real torchaudio (the ``gpu`` extra); the upstream_cosyvoice
tests put this folder first on ``sys.path`` only where ``import torchaudio``
fails.

What upstream calls (cosyvoice/utils/file_utils.py ``load_wav``,
cosyvoice/cli/frontend.py, cosyvoice/utils/onnx.py):

- ``torchaudio.load(path, backend="soundfile")`` -> (float32 [channels, frames], rate)
- ``torchaudio.transforms.Resample(orig_freq, new_freq)`` (sinc, Hann window,
  width 6, rolloff 0.99: torchaudio's defaults)
- ``torchaudio.compliance.kaldi.fbank(wave, num_mel_bins=80, dither=0,
  sample_frequency=16000)`` (Kaldi's defaults otherwise)
"""

from __future__ import annotations

import soundfile
import torch

from torchaudio import compliance, functional, transforms

STAND_IN = True
__version__ = "0.0+chorus.stand.in"


def load(path, frame_offset: int = 0, num_frames: int = -1, normalize: bool = True, channels_first: bool = True,
         format=None, buffer_size: int = 4096, backend=None):
    """Read an audio file as float32 samples in [-1, 1], channels first."""
    frames = -1 if num_frames is None or num_frames < 0 else num_frames
    data, rate = soundfile.read(path, start=frame_offset, frames=frames, dtype="float32", always_2d=True)
    tensor = torch.from_numpy(data)  # [frames, channels]
    return (tensor.t().contiguous() if channels_first else tensor), int(rate)


__all__ = ["STAND_IN", "compliance", "functional", "load", "transforms"]
