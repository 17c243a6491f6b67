"""Joining chapter files into one book without encoding them again.

Each chapter file is a whole file of its own (``Encoder`` with
``pad_to_frame``: a whole number of the codec's frames). The book takes their
compressed packets in order, each chapter's timestamps shifted to follow the
one before (PyAV remux, for AAC in MP4, MP3 and Ogg/Opus), or their samples in
order (WAV, FLAC: lossless, so copying samples loses nothing).

Encoder delay at a join: an AAC chapter after the first drops its first
packet, the encoder's 1024 priming samples, so the book is exactly its
chapters' samples end to end (each file is whole frames, so no padding lies
between them). Dropping it is clean because a chapter after the first starts
with its chapter pause (silence longer than a frame): the decoder joins
silence to silence. MP3 and Opus chapters keep every packet (LAME's bit
reservoir lets a frame borrow bytes from the one before; an Opus packet's
length is its own): the book then holds each later chapter's encoder delay
(MP3 1105 samples, which the assembly takes out of the chapter's lead-in;
Opus 312 at 48 kHz) and the padding of the last packet before it, and the
chapters' starts come from the packets' timestamps, so chapter marks and
timings stay exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from chorus.tasks.audio import formats

# Formats joined by remuxing packets, with PyAV's muxer and its options.
MUXERS: dict[str, tuple[str, dict[str, str]]] = {
    # faststart moves the index in front of the audio, so players can start before the download ends.
    "m4b": ("ipod", {"movflags": "+faststart"}),
    "mp3": ("mp3", {"id3v2_version": "0"}),  # ID3 comes from mutagen, with chapters
    "opus": ("ogg", {}),
}
# Formats whose chapters after the first drop their first (priming) packet.
PRIMED = frozenset({"m4b"})
# Opus frame lengths by TOC configuration (RFC 6716, 3.1), in 1/400 s: SILK,
# hybrid, CELT.
_OPUS_FRAME_400THS = (4, 8, 16, 24) * 3 + (4, 8) * 2 + (1, 2, 4, 8) * 4
BLOCK_FRAMES = 1 << 16  # samples copied at a time for WAV and FLAC
# Every audio format a book is joined into (a read-along EPUB's chapters are not joined: it is a package).
JOINED = (*MUXERS, "wav", "flac")


@dataclass(frozen=True)
class Joined:
    starts: list[float]  # each chapter's first sample in the book, seconds
    duration: float  # seconds


def join(parts: Sequence[Path], titles: Sequence[str], path: Path, audio_format: str,
         title: str = "", author: str = "") -> Joined:
    """Write the book at ``path`` from chapter files ``parts`` (one per entry
    of ``titles``, in order), with chapter marks (M4B, MP3) and tags."""
    if not parts or len(parts) != len(titles):
        raise ValueError(f"{len(parts)} chapter files for {len(titles)} titles")
    joined = (_remux if audio_format in MUXERS else _copy_samples)(parts, path, audio_format, title, author, titles)
    if audio_format == "mp3":
        chapters = [formats.Chapter(t, s) for t, s in zip(titles, joined.starts)]
        formats.tag_mp3(path, title, author, chapters, joined.duration)
    return joined


def _copy_samples(parts: Sequence[Path], path: Path, audio_format: str, title: str, author: str,
                  titles: Sequence[str]) -> Joined:
    codec = formats.CODECS[audio_format]
    rate = sf.info(str(parts[0])).samplerate
    starts, written = [], 0
    with sf.SoundFile(path, "w", samplerate=rate, channels=1, format=codec.container, subtype=codec.subtype) as out:
        if codec.container == "FLAC":  # Vorbis comments go in before the first write
            if title:
                out.title = title
                out.album = title
            if author:
                out.artist = author
        for part in parts:
            starts.append(written / rate)
            with sf.SoundFile(part) as source:
                if source.samplerate != rate:
                    raise ValueError(f"{part.name} is at {source.samplerate} Hz, the book at {rate} Hz")
                for block in source.blocks(blocksize=BLOCK_FRAMES, dtype="float32", always_2d=True):
                    out.write(block)
                    written += len(block)
    return Joined(starts, written / rate)


def _remux(parts: Sequence[Path], path: Path, audio_format: str, title: str, author: str,
           titles: Sequence[str]) -> Joined:
    import av  # FFmpeg is only loaded by jobs that need it

    muxer, options = MUXERS[audio_format]
    output = av.open(str(path), "w", format=muxer, options=options)
    metadata = {"title": title, "album": title, "artist": author, "album_artist": author}
    if audio_format == "m4b":
        metadata.update(genre="Audiobook", media_type="2")  # stik 2 = audiobook
    output.metadata.update({k: v for k, v in metadata.items() if v})
    stream = None
    starts: list[int] = []  # in the stream's samples
    end = 0  # where the next chapter's first kept packet goes, in samples
    rate = 0
    try:
        for number, part in enumerate(parts):
            with av.open(str(part)) as source:
                source_stream = source.streams.audio[0]
                if stream is None:
                    stream = output.add_stream_from_template(source_stream)
                    stream.metadata.update(output.metadata)
                    rate = source_stream.rate
                elif source_stream.rate != rate or source_stream.codec_context.name != stream.codec_context.name:
                    raise ValueError(f"{part.name} is {source_stream.codec_context.name} at {source_stream.rate} Hz, "
                                     f"the book {stream.codec_context.name} at {rate} Hz")
                to_samples = source_stream.time_base * rate  # one tick of the file, in samples
                packets = [p for p in source.demux(source_stream) if p.size]
                if not packets:
                    raise ValueError(f"{part.name} holds no audio")
                if number and audio_format in PRIMED:
                    packets = packets[1:]
                first = int(packets[0].pts * to_samples)
                shift = end - first if number else 0
                starts.append(shift)
                last = number == len(parts) - 1
                for index, packet in enumerate(packets):
                    pts = int(packet.pts * to_samples) + shift
                    duration = int(packet.duration * to_samples)
                    if not last and index == len(packets) - 1:
                        # inside the book a chapter's last packet decodes whole: its
                        # padding is not trimmed as it is at the end of a file
                        duration = _whole(packet, audio_format, rate, duration)
                    end = pts + duration
                    packet.stream = stream
                    packet.time_base = Fraction(1, rate)
                    packet.pts = packet.dts = pts
                    packet.duration = duration
                    output.mux(packet)
                if last and audio_format == "mp3":  # its packets' times include LAME's delay and padding
                    end = shift + round(source.duration * rate / av.time_base)
        if audio_format != "mp3":  # MP3's chapters are ID3 frames, written after
            output.set_chapters(_marks(titles, starts, end, rate))
    finally:
        output.close()
    return Joined([s / rate for s in starts], end / rate)


def _whole(packet: object, audio_format: str, rate: int, duration: int) -> int:
    """Samples a packet decodes to before any trim at the end of its file."""
    if audio_format == "m4b":
        return 1024
    if audio_format == "opus":
        data = bytes(packet)
        code = data[0] & 3
        frames = 1 if code == 0 else 2 if code < 3 else data[1] & 0x3F
        return frames * _OPUS_FRAME_400THS[data[0] >> 3] * rate // 400
    return duration  # MP3 frames are all the same length


def _marks(titles: Sequence[str], starts: Sequence[int], end: int, rate: int) -> list[dict]:
    """Chapters for the MP4 muxer (a QuickTime chapter track plus Nero 'chpl'), in milliseconds."""
    bounds = [*starts[1:], end]
    return [{"id": n + 1, "start": round(s * 1000 / rate), "end": round(max(e, s) * 1000 / rate),
             "time_base": Fraction(1, 1000), "metadata": {"title": t}}
            for n, (t, s, e) in enumerate(zip(titles, starts, bounds))]


def decoded_samples(path: Path) -> int:
    """Samples a decoder gives for a file, after its container's trims (tests, checks)."""
    import av

    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def decode(path: Path) -> tuple[np.ndarray, int]:
    """A whole file decoded to mono float32 by FFmpeg (tests, checks)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = []
        for frame in container.decode(stream):
            samples = frame.to_ndarray().reshape(frame.samples, -1) if not frame.format.is_planar \
                else frame.to_ndarray().T
            if samples.dtype.kind == "i":
                samples = samples / float(1 << (8 * samples.dtype.itemsize - 1))
            chunks.append(samples.mean(axis=1).astype(np.float32))
        return np.concatenate(chunks), stream.rate
