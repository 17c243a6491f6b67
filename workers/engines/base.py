"""The protocol every engine follows: loaded once, then asked for one segment
at a time — or, in a worker started with ``chorus worker --inflight N``, for
up to N segments at once from N threads (workers/inflight.py). CosyVoice2
takes that (upstream's own server drives it from several threads). Piper is
not known to: its phonemiser, espeak-ng, keeps global state, so Piper scales
with worker processes, not with --inflight. An engine whose calls cannot
overlap and that is meant to run with --inflight must serialise them itself."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from chorus.configs import Model, Voice


class Engine(Protocol):
    model: Model
    sample_rate: int
    provider: str  # where it actually runs, e.g. "CPUExecutionProvider" or "cuda:0"
    # Whether it can say where each spoken word lies in its audio
    # (``synthesize_words``): Piper can; engines that cannot are timed by sentence.
    aligns_words: bool

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> Engine:
        """Load the model's files; raise ModelLoadError naming what is missing."""
        ...

    def synthesize(self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0) -> np.ndarray:
        """Speak one segment; mono float32 samples in [-1, 1] at ``sample_rate``
        (none for text with nothing to say, such as punctuation alone). May be
        called from several threads at once (see above).

        ``seed``: None for the engine's usual take; a number when a take was
        judged bad and the segment is spoken again (workers/synthesize.py). An
        engine whose output depends on a random generator seeds it with this
        number, so that the next take differs (CosyVoice2: torch's generator,
        which its LLM samples speech tokens from); one without a seed it can
        set ignores it (Piper; the tone stand-in decides by word).

        ``speed``: the job's speaking rate, 0.5 to 2.0 (``tasks/text/plan.py``),
        1.0 the voice's own; 2.0 says the text in about half the time. Each
        engine applies it in its own terms: Piper divides the model's length
        scale by it, CosyVoice2 takes it as its ``speed`` argument (the mel
        spectrogram stretched before the vocoder), the tone stand-in divides
        its durations by it. The take check expects durations divided by it."""
        ...

    def synthesize_words(
        self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0,
    ) -> tuple[np.ndarray, list[tuple[int, int]] | None]:
        """``synthesize``, and the (start, end) samples of each word of the text
        (``tasks/text/words.words``) in the audio returned, or None where this
        take's words cannot be told apart. Only called when ``aligns_words``."""
        ...

    def has_speaker(self, speaker_id: str) -> bool:
        """Whether a reference speaker is registered (False for engines without)."""
        ...

    def register_speaker(self, speaker_id: str, prompt_text: str, prompt_audio: Path) -> None:
        """Extract and keep a reference speaker's embedding, once."""
        ...

    def forget_speaker(self, speaker_id: str) -> None:
        ...

    def release_memory(self) -> None:
        """Free caches the engine holds between jobs (called once per job)."""
        ...
