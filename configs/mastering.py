"""How a book sounds: pauses, segment trimming and fades, loudness target.

A plain dataclass with no audio imports, so the API can put the settings that
decide a segment's audio into its cache key without loading the audio stack.
"""

from __future__ import annotations

from dataclasses import dataclass

LOSSY_FORMATS = frozenset({"mp3", "opus", "m4b", "epub"})


@dataclass(frozen=True)
class Mastering:
    sentence_pause_ms: int = 250
    paragraph_pause_ms: int = 700
    chapter_pause_ms: int = 2000
    fade_ms: float = 8.0
    trim_threshold_db: float = -45.0
    trim_keep_ms: float = 40.0
    target_lufs: float = -18.0
    max_true_peak_dbfs: float = -3.0
    # Lossy codecs (MP3, Opus, AAC) overshoot the input's peak a little when
    # decoded; assembly leaves this much more room for them.
    lossy_headroom_db: float = 1.0

    def ceiling_dbfs(self, audio_format: str | None = None) -> float:
        """The true-peak ceiling to normalise to for this output format."""
        lossy = audio_format in LOSSY_FORMATS
        return self.max_true_peak_dbfs - (self.lossy_headroom_db if lossy else 0.0)
