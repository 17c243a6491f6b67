"""The protocol every engine follows: loaded once, then asked for one segment
at a time."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from configs import Model, Voice


class Engine(Protocol):
    model: Model
    sample_rate: int

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> Engine:
        """Load the model's files; raise ModelLoadError naming what is missing."""
        ...

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        """Speak one segment; mono float32 samples in [-1, 1] at ``sample_rate``."""
        ...

    def release_memory(self) -> None:
        """Free caches the engine holds between jobs (called once per job)."""
        ...
