"""STAND-IN: torchaudio.compliance (only ``kaldi.fbank``)."""

from torchaudio.compliance import kaldi

__all__ = ["kaldi"]
