"""STAND-IN: a numpy-backed object with the few torch.Tensor methods Chorus uses."""

from __future__ import annotations

import numpy as np


class StandInTensor:
    def __init__(self, data: np.ndarray) -> None:
        self.data = np.asarray(data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def cpu(self) -> StandInTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.data

    def squeeze(self, dim: int | None = None) -> StandInTensor:
        return StandInTensor(self.data.squeeze() if dim is None else self.data.squeeze(dim))

    def __repr__(self) -> str:
        return f"StandInTensor(shape={self.shape})"
