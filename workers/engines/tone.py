"""A stand-in engine for tests and benchmarks of the pipeline's mechanics.

It is not a voice: it speaks every segment as a tone whose length follows the
text (one beep per word, ``seconds_per_word``) and costs a fixed time per
character (``ms_per_char``), like a real engine would. It keeps registered
speakers the way a cloning engine does (each registered once, counted) and
beeps lower for them. Options make tests deterministic: a segment containing
``fail_word`` fails with EngineError; one containing ``flaky_word`` fails
while a file exists; one containing ``slow_word`` takes ``slow_seconds`` longer;
one containing ``exit_word`` ends its whole process at once (``os._exit``), as
a segfault or the OOM killer would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from configs import Model, Voice
from tasks.errors import EngineError

EXIT_STATUS = 70  # what a process ended by ``exit_word`` exits with


class ToneEngine:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.sample_rate = model.sample_rate
        self.provider = "cpu"
        self.seconds_per_char = float(model.options.get("ms_per_char", 0.0)) / 1000
        self.fail_word = model.options.get("fail_word")
        # A segment with ``flaky_word`` fails while the file named by the
        # environment variable ``flaky_file_env`` exists: a cause tests remove.
        self.flaky_word = model.options.get("flaky_word")
        self.flaky_file = os.environ.get(model.options.get("flaky_file_env", ""), "")
        self.slow_word = model.options.get("slow_word")  # segments with it take slow_seconds longer
        self.slow_seconds = float(model.options.get("slow_seconds", 0.0))
        self.exit_word = model.options.get("exit_word")  # segments with it end the process
        self.seconds_per_word = float(model.options.get("seconds_per_word", 0.17))
        self.speakers: dict[str, str] = {}
        self.speaker_registrations = 0

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> ToneEngine:
        return cls(model)

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        if self.exit_word and self.exit_word in text.lower():
            os._exit(EXIT_STATUS)  # no exception, no cleanup: the process is simply gone
        if self.fail_word and self.fail_word in text.lower():
            raise EngineError(f"tone stand-in refuses segments containing {self.fail_word!r}")
        if self.flaky_word and self.flaky_word in text.lower() and self.flaky_file and os.path.exists(self.flaky_file):
            raise EngineError(f"tone stand-in: {self.flaky_file} exists, so segments with {self.flaky_word!r} fail")
        time.sleep(self.seconds_per_char * len(text))
        if self.slow_word and self.slow_word in text.lower():
            time.sleep(self.slow_seconds)
        beep = int(0.7 * self.seconds_per_word * self.sample_rate)
        gap = int(0.3 * self.seconds_per_word * self.sample_rate)
        if voice.needs_speaker and voice.id not in self.speakers:
            raise EngineError(f"speaker of voice {voice.id!r} is not registered")
        pitch = 330 if voice.id in self.speakers else 440
        t = np.arange(beep) / self.sample_rate
        word = np.concatenate([0.3 * np.sin(2 * np.pi * pitch * t), np.zeros(gap)]).astype(np.float32)
        return np.tile(word, max(1, len(text.split())))

    def has_speaker(self, speaker_id: str) -> bool:
        return speaker_id in self.speakers

    def register_speaker(self, speaker_id: str, prompt_text: str, prompt_audio: Path) -> None:
        if not prompt_audio.is_file():
            raise EngineError(f"reference audio not found: {prompt_audio}")
        self.speakers[speaker_id] = prompt_text
        self.speaker_registrations += 1

    def forget_speaker(self, speaker_id: str) -> None:
        self.speakers.pop(speaker_id, None)

    def release_memory(self) -> None:
        pass
