"""Audio helpers for segments and audiobooks: pure functions over numpy arrays,
with soundfile (libsndfile) doing the encoding."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf


@dataclass(frozen=True)
class Codec:
    container: str
    subtype: str
    content_type: str


# libsndfile 1.2 writes all three; MP3 goes through its bundled LAME.
CODECS: dict[str, Codec] = {
    "wav": Codec("WAV", "PCM_16", "audio/wav"),
    "flac": Codec("FLAC", "PCM_16", "audio/flac"),
    "mp3": Codec("MP3", "MPEG_LAYER_III", "audio/mpeg"),
}
FORMATS = tuple(CODECS)


def to_wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono float samples in [-1, 1] as 16-bit PCM WAV (segment storage)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def read_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode any libsndfile-readable bytes to mono float32 samples."""
    samples, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0], sample_rate


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(round(seconds * sample_rate)), dtype=np.float32)


class Encoder:
    """Writes an audiobook to a file one block at a time, so memory stays the
    size of one segment however long the book is."""

    def __init__(self, path: Path, audio_format: str, sample_rate: int) -> None:
        codec = CODECS[audio_format]
        self.sample_rate = sample_rate
        self.samples_written = 0
        self._file = sf.SoundFile(
            path, "w", samplerate=sample_rate, channels=1, format=codec.container, subtype=codec.subtype
        )

    def write(self, samples: np.ndarray) -> None:
        if samples.size:
            self._file.write(samples)
            self.samples_written += int(samples.size)

    @property
    def seconds(self) -> float:
        return self.samples_written / self.sample_rate

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Encoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
