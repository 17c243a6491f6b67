"""Reading back what the encoders wrote, for tests: the service itself never
decodes a finished book, so these readers live with the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from chorus.tasks.audio.formats import Chapter

_PYAV_SUFFIXES = {".m4b", ".m4a", ".mp4", ".aac"}


def read_audio_file(path: Path) -> tuple[np.ndarray, int]:
    """Decode a file to mono float32 samples at its own rate: libsndfile for
    WAV/FLAC/MP3/Ogg, PyAV for MP4/AAC (priming dropped through the edit list,
    end padding cut at the stream's declared duration)."""
    path = Path(path)
    if path.suffix.lower() not in _PYAV_SUFFIXES:
        try:
            samples, rate = sf.read(path, dtype="float32", always_2d=True)
            return (samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]), rate
        except sf.LibsndfileError:
            pass
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        parts = [frame.to_ndarray().astype(np.float32).mean(axis=0) for frame in container.decode(stream)]
        samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        if stream.duration is not None and stream.time_base is not None:
            declared = round(stream.duration * stream.time_base * rate)
            samples = samples[:declared]
    return samples, rate


def read_chapters(path: Path) -> list[Chapter]:
    """Chapters stored in an M4B (through PyAV) or MP3 (ID3 CHAP through mutagen)."""
    path = Path(path)
    if path.suffix.lower() == ".mp3":
        from mutagen.id3 import ID3, ID3NoHeaderError

        try:
            frames = ID3(str(path)).getall("CHAP")
        except ID3NoHeaderError:
            return []
        return [Chapter(str(f.sub_frames["TIT2"]) if "TIT2" in f.sub_frames else f.element_id,
                        f.start_time / 1000) for f in sorted(frames, key=lambda f: f.start_time)]
    import av

    with av.open(str(path)) as container:
        return [Chapter(c["metadata"].get("title", ""), float(c["start"] * c["time_base"]))
                for c in container.chapters()]


def read_tags(path: Path) -> dict[str, str]:
    """Title/artist/album as stored (mutagen's easy interface, any format)."""
    import mutagen

    tags = mutagen.File(str(path), easy=True)
    if tags is None or tags.tags is None:
        return {}
    return {key: str(tags[key][0]) for key in ("title", "artist", "album") if key in tags}
