"""Audio encoded as it comes, for a response that starts before its end is known.

``/v1/audio/speech`` sends a text's audio while later segments are still being
spoken, so nothing here may seek back: WAV gets a header whose sizes say
"unknown" (0xFFFFFFFF, as streaming servers write it), PCM has no header at
all, and MP3, Ogg/Opus, ADTS/AAC and FLAC come from FFmpeg's muxers (PyAV)
writing into a buffer that is emptied after every segment. Segments are read
from the cache's 16-bit WAV files with the standard library, so this module,
like the API, needs neither libsndfile nor scipy; PyAV is loaded on the first
encoder that needs it.
"""

from __future__ import annotations

import io
import struct
import wave
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreamFormat:
    content_type: str
    rate: int | None  # fixed output rate; None: the voice's own
    muxer: str = ""  # FFmpeg's muxer, "" for the raw formats
    codec: str = ""
    sample_format: str = ""  # what the codec takes


# The names, media types and PCM layout of OpenAI's speech endpoint: "pcm" is
# raw 16-bit little-endian mono at 24 kHz; Opus comes in Ogg, AAC in ADTS.
STREAM_FORMATS: dict[str, StreamFormat] = {
    "mp3": StreamFormat("audio/mpeg", None, "mp3", "libmp3lame", "fltp"),
    "opus": StreamFormat("audio/ogg", 24000, "ogg", "libopus", "flt"),
    "aac": StreamFormat("audio/aac", None, "adts", "aac", "fltp"),
    "flac": StreamFormat("audio/flac", None, "flac", "flac", "s16"),
    "wav": StreamFormat("audio/wav", None),
    "pcm": StreamFormat("audio/pcm", 24000),
}
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
OGG_PAGE_US = 20_000  # an Ogg page per 20 ms of audio, not per second: a stream, not a file


def segment_rate(data: bytes) -> int:
    """A cached segment's sample rate, from its header alone."""
    with wave.open(io.BytesIO(data)) as reader:
        return reader.getframerate()


def read_segment_wav(data: bytes) -> tuple[np.ndarray, int]:
    """A cached segment (mono 16-bit WAV, possibly with Chorus's ``chrs`` chunk,
    which the reader skips) as float32 samples and its rate."""
    with wave.open(io.BytesIO(data)) as reader:
        if reader.getsampwidth() != 2 or reader.getnchannels() != 1:
            raise ValueError("a cached segment is mono 16-bit WAV")
        frames = reader.readframes(reader.getnframes())
        rate = reader.getframerate()
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0, rate


def after_pause(samples: np.ndarray, pause_ms: int, rate: int) -> np.ndarray:
    """The segment with ``pause_ms`` of silence before it."""
    return np.concatenate([np.zeros(round(rate * pause_ms / 1000), np.float32), samples])


def conform(samples: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    """A segment of another voice's rate (a text that tags voices of two models)
    at the stream's rate: linear interpolation, enough for the odd segment."""
    if rate == to_rate or not samples.size:
        return samples
    times = np.arange(round(samples.size * to_rate / rate)) * (rate / to_rate)
    return np.interp(times, np.arange(samples.size), samples).astype(np.float32)


def _pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class _Buffer:
    """The muxer's output, taken away after each write: a pipe FFmpeg cannot seek."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


class StreamEncoder:
    """``write`` mono float32 samples at ``input_rate``, get back whatever bytes
    of the stream are ready; ``close`` returns the rest."""

    def __init__(self, name: str, input_rate: int) -> None:
        self.format = STREAM_FORMATS[name]
        self.name = name
        self.input_rate = input_rate
        self.rate = self.format.rate or input_rate
        if name == "mp3" and self.rate not in MP3_RATES:
            self.rate = min((r for r in MP3_RATES if r >= self.rate), default=MP3_RATES[-1])
        self._started = False
        self._container = None
        self._resampler = None
        if self.format.muxer or self.rate != input_rate:
            import av  # only when a codec or a rate change needs FFmpeg

            self._av = av
        if self.format.muxer:
            self._buffer = _Buffer()
            options = {"page_duration": str(OGG_PAGE_US)} if self.format.muxer == "ogg" else {}
            self._container = av.open(self._buffer, "w", format=self.format.muxer, options=options)
            self._stream = self._container.add_stream(self.format.codec, rate=self.rate, layout="mono")
            frame_size = self._stream.codec_context.frame_size or None
            self._resampler = av.AudioResampler(self.format.sample_format, "mono", self.rate, frame_size=frame_size)
        elif self.rate != input_rate:
            self._resampler = av.AudioResampler("s16", "mono", self.rate)

    def _header(self) -> bytes:
        """A WAV header for a stream of unknown length."""
        if self.name != "wav":
            return b""
        unknown = 0xFFFFFFFF
        fmt = struct.pack("<HHIIHH", 1, 1, self.rate, self.rate * 2, 2, 16)
        return b"RIFF" + struct.pack("<I", unknown) + b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + (
            b"data" + struct.pack("<I", unknown))

    def write(self, samples: np.ndarray) -> bytes:
        head = b"" if self._started else self._header()
        self._started = True
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._resampler is None:  # raw PCM at the voice's rate
            return head + _pcm16(samples)
        if not samples.size:
            return head
        frame = self._av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.input_rate
        return head + self._encode(self._resampler.resample(frame))

    def _encode(self, frames: list) -> bytes:
        if self._container is None:  # raw PCM, resampled
            return b"".join(bytes(f.planes[0])[: f.samples * 2] for f in frames)
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._buffer.take()

    def close(self) -> bytes:
        head = b"" if self._started else self._header()
        self._started = True
        if self._resampler is None:
            return head
        out = self._encode(self._resampler.resample(None))
        if self._container is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            out += self._buffer.take()
        return head + out
