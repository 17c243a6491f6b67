"""Audio helpers for segments and audiobooks: pure functions over numpy arrays,
with soundfile (libsndfile) encoding WAV, FLAC, MP3 and Ogg/Opus and PyAV
(FFmpeg) encoding AAC in an MP4 audiobook (.m4b) with chapters."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np
import soundfile as sf
import soxr


@dataclass(frozen=True)
class Codec:
    container: str
    subtype: str
    content_type: str
    sample_rate: int | None = None  # fixed output rate, else the input's
    frame: int = 1  # samples per codec frame at the file's rate (files of whole frames join without a gap)
    join_delay: int = 0  # samples at the file's rate that a following file's decoder delay adds at a join


# libsndfile 1.2 writes WAV, FLAC, MP3 (bundled LAME; an input rate MPEG does not
# have is resampled to the next one up) and Ogg/Opus (48 kHz here);
# PyAV's FFmpeg writes AAC in MP4 with chapters.
CODECS: dict[str, Codec] = {
    "wav": Codec("WAV", "PCM_16", "audio/wav"),
    "flac": Codec("FLAC", "PCM_16", "audio/flac"),
    # LAME's encoder delay (576) and the decoder's (529) stay in a joined book.
    "mp3": Codec("MP3", "MPEG_LAYER_III", "audio/mpeg", frame=1152, join_delay=1105),  # frame 576 below 32 kHz
    "opus": Codec("OGG", "OPUS", "audio/ogg", sample_rate=48000, frame=960),  # 20 ms
    "m4b": Codec("MP4", "AAC", "audio/mp4", frame=1024),
    # A read-along EPUB: its chapters' audio files are AAC in MP4, the book is the EPUB.
    "epub": Codec("MP4", "AAC", "application/epub+zip", frame=1024),
}
FORMATS = tuple(CODECS)

OPUS_RATE = 48000
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
AAC_FALLBACK_RATE = 44100
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
AAC_BIT_RATE = 96000  # the FFmpeg AAC encoder overshoots peaks by up to 2 dB at 64 kb/s
# FFmpeg's AAC rate control: "twoloop" (its default, the better
# signal-to-noise ratio) or "fast" (a fraction of the CPU, at a lower
# signal-to-noise ratio).
AAC_CODERS = ("twoloop", "fast")
BLOCK = 4096  # samples per encoder call / AAC frame batch


@dataclass(frozen=True)
class Chapter:
    title: str
    start_seconds: float


def to_wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """Encode mono float samples in [-1, 1] as 16-bit PCM WAV (segment storage)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class AudioTooLong(ValueError):
    """The header of a clip says it lasts longer than allowed; nothing was decoded."""


class ClipTooLarge(ValueError):
    """The header of a clip asks for a higher sample rate or more channels than
    allowed; nothing was decoded."""


def read_clip(data: bytes, max_seconds: float, max_rate: int, max_channels: int) -> tuple[np.ndarray, int]:
    """Decode a short clip to mono float32, bounded before decoding: the header
    gives frames, channels and rate, and their product is what decoding
    allocates. A compressed file of a few hundred kilobytes can claim 8 channels
    at 655 kHz, so rate and channels are refused from the header as length is
    (and no more than ``max_seconds`` are ever read, should the header
    understate its length)."""
    info = sf.info(io.BytesIO(data))
    if info.samplerate <= 0 or info.channels <= 0:
        raise sf.LibsndfileError(0, f"unusable header: {info.samplerate} Hz, {info.channels} channels")
    if info.samplerate > max_rate or info.channels > max_channels:
        raise ClipTooLarge(
            f"{info.samplerate} Hz and {info.channels} channels, over the limit of {max_rate} Hz and {max_channels} channels"
        )
    if info.frames / info.samplerate > max_seconds:
        raise AudioTooLong(f"{info.frames / info.samplerate:.1f} s")
    limit = int(max_seconds * info.samplerate) + 1
    samples, rate = sf.read(io.BytesIO(data), frames=limit, dtype="float32", always_2d=True)
    if len(samples) > limit - 1:
        raise AudioTooLong(f"more than {max_seconds:.0f} s")
    return samples.mean(axis=1), rate


def read_audio(data: bytes) -> tuple[np.ndarray, int]:
    """Decode any libsndfile-readable bytes to mono float32 samples."""
    samples, sample_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0], sample_rate


def _mono_float32(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim > 1:
        samples = samples.mean(axis=1, dtype=np.float32)
    return samples


class _SoundFileSink:
    """WAV, FLAC, MP3, Ogg/Opus through libsndfile; Opus is fed at 48 kHz
    through one streaming soxr resampler."""

    def __init__(self, path: Path, codec: Codec, sample_rate: int, title: str, author: str) -> None:
        self.rate = codec.sample_rate or sample_rate
        if codec.container == "MP3" and self.rate not in MP3_RATES:
            self.rate = min((r for r in MP3_RATES if r >= self.rate), default=MP3_RATES[-1])
        self._resampler = (
            soxr.ResampleStream(sample_rate, self.rate, 1, dtype="float32", quality="HQ")
            if self.rate != sample_rate else None
        )
        self._file = sf.SoundFile(
            path, "w", samplerate=self.rate, channels=1, format=codec.container, subtype=codec.subtype
        )
        # Vorbis comments (FLAC, Opus) are UTF-8 and must be set before the first
        # write. MP3 gets ID3 from mutagen after close: LAME's ID3 is Latin-1 only.
        if codec.container in ("FLAC", "OGG"):
            if title:
                self._file.title = title
                self._file.album = title
            if author:
                self._file.artist = author

    def write(self, block: np.ndarray) -> None:
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        if block.size:
            self._file.write(block)

    def close(self) -> None:
        if self._resampler is not None:
            tail = self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
            if tail.size:
                self._file.write(tail)
            self._resampler = None
        self._file.close()


class _AacSink:
    """AAC-LC in an MP4 ('ipod' muxer, i.e. .m4a/.m4b) through PyAV, with
    iTunes tags and chapters (a QuickTime chapter track plus Nero 'chpl')."""

    def __init__(self, path: Path, sample_rate: int, title: str, author: str, coder: str = AAC_CODERS[0]) -> None:
        import av  # FFmpeg is only loaded by jobs that want AAC

        self._av = av
        self.rate = sample_rate if sample_rate in AAC_RATES else AAC_FALLBACK_RATE
        self._resampler = (
            soxr.ResampleStream(sample_rate, self.rate, 1, dtype="float32", quality="HQ")
            if self.rate != sample_rate else None
        )
        # faststart moves the index in front of the audio at close (a streamed
        # copy inside FFmpeg), so players can start before the download ends.
        self._container = av.open(str(path), "w", format="ipod", options={"movflags": "+faststart"})
        metadata = {"genre": "Audiobook", "media_type": "2"}  # stik 2 = audiobook
        if title:
            metadata.update(title=title, album=title)
        if author:
            metadata.update(artist=author, album_artist=author)
        self._container.metadata.update(metadata)
        if coder not in AAC_CODERS:
            raise ValueError(f"AAC coder {coder!r}: one of {', '.join(AAC_CODERS)}")
        self._stream = self._container.add_stream("aac", rate=self.rate, layout="mono", options={"aac_coder": coder})
        self._stream.bit_rate = AAC_BIT_RATE
        self._pts = 0
        self.chapters: list[Chapter] = []
        self.duration_seconds = 0.0

    def write(self, block: np.ndarray) -> None:
        if self._resampler is not None:
            block = self._resampler.resample_chunk(block)
        self._encode(block)

    def _encode(self, block: np.ndarray) -> None:
        if not block.size:
            return
        frame = self._av.AudioFrame.from_ndarray(
            np.ascontiguousarray(block.reshape(1, -1)), format="fltp", layout="mono"
        )
        frame.sample_rate = self.rate
        frame.time_base = Fraction(1, self.rate)
        frame.pts = self._pts
        self._pts += block.size
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._resampler is not None:
            self._encode(self._resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
            self._resampler = None
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        end_ms = round(self.duration_seconds * 1000)
        chapters = []
        for number, chapter in enumerate(self.chapters):
            start = round(chapter.start_seconds * 1000)
            following = self.chapters[number + 1].start_seconds if number + 1 < len(self.chapters) else None
            end = round(following * 1000) if following is not None else max(end_ms, start)
            chapters.append({"id": number + 1, "start": start, "end": end, "time_base": Fraction(1, 1000),
                             "metadata": {"title": chapter.title}})
        # The MP4 muxer builds its chapter track from the chapters present when
        # the trailer is written, so they can be set here, at the very end.
        if chapters:
            self._container.set_chapters(chapters)
        self._container.close()


def tag_mp3(path: Path, title: str, author: str, chapters: list[Chapter], duration: float) -> None:
    """ID3v2.3 title/artist/album and CHAP/CTOC chapter frames, written by mutagen."""
    from mutagen.id3 import CHAP, CTOC, ID3, TALB, TCON, TIT2, TPE1, CTOCFlags

    tags = ID3()
    if title:
        tags.add(TIT2(encoding=3, text=[title]))
        tags.add(TALB(encoding=3, text=[title]))
    if author:
        tags.add(TPE1(encoding=3, text=[author]))
    tags.add(TCON(encoding=3, text=["Audiobook"]))
    ids = []
    for number, chapter in enumerate(chapters):
        following = chapters[number + 1].start_seconds if number + 1 < len(chapters) else duration
        element = f"chp{number}"
        ids.append(element)
        tags.add(CHAP(element_id=element, start_time=round(chapter.start_seconds * 1000),
                      end_time=round(max(following, chapter.start_seconds) * 1000),
                      sub_frames=[TIT2(encoding=3, text=[chapter.title])]))
    if ids:
        tags.add(CTOC(element_id="toc", flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                      child_element_ids=ids, sub_frames=[TIT2(encoding=3, text=["Chapters"])]))
    tags.save(str(path), v2_version=3)


class Encoder:
    """Writes an audiobook to a file one block at a time, so memory stays the
    size of one segment however long the book is.

    ``seconds`` and ``samples_written`` count input samples at the input
    ``sample_rate`` even where the file is at another rate (Opus, some AAC).
    ``add_chapter`` marks a chapter start (normally ``encoder.seconds`` before
    its first segment); M4B and MP3 store chapters in the file, the others only
    keep them in ``chapters`` for the caller.
    """

    def __init__(
        self, path: Path, audio_format: str, sample_rate: int, *, title: str = "", author: str = "",
        aac_coder: str = AAC_CODERS[0],
    ) -> None:
        codec = CODECS[audio_format]
        self.path = Path(path)
        self.audio_format = audio_format
        self.codec = codec
        self.sample_rate = sample_rate
        self.title = title
        self.author = author
        self.samples_written = 0
        self.chapters: list[Chapter] = []
        self._closed = False
        self._sink: _SoundFileSink | _AacSink = (
            _AacSink(self.path, sample_rate, title, author, aac_coder) if codec.container == "MP4"
            else _SoundFileSink(self.path, codec, sample_rate, title, author)
        )

    @property
    def output_rate(self) -> int:
        """The sample rate inside the file."""
        return self._sink.rate

    def add_chapter(self, title: str, start_seconds: float | None = None) -> None:
        """Mark a chapter starting at ``start_seconds`` (default: now)."""
        start = self.seconds if start_seconds is None else float(start_seconds)
        if self.chapters and start < self.chapters[-1].start_seconds:
            raise ValueError("chapters must be added in order")
        self.chapters.append(Chapter(title, start))

    def write(self, samples: np.ndarray) -> None:
        samples = _mono_float32(samples)
        for offset in range(0, samples.size, BLOCK):
            block = np.clip(samples[offset : offset + BLOCK], -1.0, 1.0)
            self._sink.write(block)
            self.samples_written += int(block.size)

    @property
    def seconds(self) -> float:
        return self.samples_written / self.sample_rate

    @property
    def frame_unit(self) -> int:
        """Input samples that make a whole number of the codec's frames in the file."""
        frame = self.codec.frame
        if self.codec.container == "MP3" and self.output_rate < 32000:
            frame //= 2
        whole = frame * self.sample_rate
        return whole // math.gcd(whole, self.output_rate)

    @property
    def join_delay(self) -> int:
        """Input samples of silence a join adds before this file's audio in a
        book (the codec's delay that the join keeps): a lead-in this much
        shorter keeps the book's pause as planned."""
        return round(self.codec.join_delay * self.sample_rate / self.output_rate)

    def pad_to_frame(self) -> int:
        """Silence up to the end of the codec's frame, so the file holds whole
        frames and the next file's audio can follow it with no gap; returns
        the samples added (fewer than ``frame_unit``)."""
        missing = -self.samples_written % self.frame_unit
        if missing:
            self.write(np.zeros(missing, dtype=np.float32))
        return missing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if isinstance(self._sink, _AacSink):
            self._sink.chapters = self.chapters
            self._sink.duration_seconds = self.seconds
        self._sink.close()
        if self.audio_format == "mp3" and (self.title or self.author or self.chapters):
            tag_mp3(self.path, self.title, self.author, self.chapters, self.seconds)

    def __enter__(self) -> Encoder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
