"""A stand-in engine for tests and benchmarks of the pipeline's mechanics.

It is not a voice: it speaks every segment as a tone, one beep per word, as
long as the word would take to say (``seconds_per_letter``, about Piper's
median rate; a Chinese character, kana, hangul syllable or digit is a word of
its own lasting ``seconds_per_syllable``; divided by the job's speed), so its takes pass the take check
(tasks/audio/takes.py) like real speech; and it costs a fixed time per
character (``ms_per_char``), like a real engine would. It keeps registered
speakers the way a cloning engine does (each registered once, counted) and
beeps lower for them. Options make tests deterministic: a segment containing
``fail_word`` fails with EngineError; one containing ``flaky_word`` fails
while a file exists; one containing ``slow_word`` takes ``slow_seconds`` longer;
one containing ``exit_word`` ends its whole process at once (``os._exit``), as
a segfault or the OOM killer would.

Bad takes, as LLM voices make them, by word: ``silent_word`` gives silence as
long as the speech would be; ``loop_word`` says the segment ``LOOPS`` times
over; ``clip_word`` is four times too loud, clipped at full scale; and
``retake_word`` loops on the engine's usual take (``seed`` None) but is fine on
any seeded one, as a sampled voice is on another draw.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from chorus.configs import Model, Voice
from chorus.tasks.errors import EngineError
from chorus.tasks.text.script import script_of

EXIT_STATUS = 70  # what a process ended by ``exit_word`` exits with
LOOPS = 8  # how often ``loop_word`` says its segment
SYLLABIC = frozenset({"han", "kana", "hangul"})


class ToneEngine:
    aligns_words = False  # a stand-in: segments are timed by sentence

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
        self.silent_word = model.options.get("silent_word")
        self.loop_word = model.options.get("loop_word")
        self.clip_word = model.options.get("clip_word")
        self.retake_word = model.options.get("retake_word")
        self.seconds_per_letter = float(model.options.get("seconds_per_letter", 0.065))
        self.seconds_per_syllable = float(model.options.get("seconds_per_syllable", 0.22))
        self.speakers: dict[str, str] = {}
        self.speaker_registrations = 0

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> ToneEngine:
        return cls(model)

    def synthesize(self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0) -> np.ndarray:
        lowered = text.lower()
        if self.exit_word and self.exit_word in lowered:
            os._exit(EXIT_STATUS)  # no exception, no cleanup: the process is simply gone
        if self.fail_word and self.fail_word in lowered:
            raise EngineError(f"tone stand-in refuses segments containing {self.fail_word!r}")
        if self.flaky_word and self.flaky_word in lowered and self.flaky_file and os.path.exists(self.flaky_file):
            raise EngineError(f"tone stand-in: {self.flaky_file} exists, so segments with {self.flaky_word!r} fail")
        time.sleep(self.seconds_per_char * len(text))
        if self.slow_word and self.slow_word in lowered:
            time.sleep(self.slow_seconds)
        if voice.needs_speaker and voice.id not in self.speakers:
            raise EngineError(f"speaker of voice {voice.id!r} is not registered")
        pitch = 330 if voice.id in self.speakers else 440
        audio = np.concatenate([self._word(seconds / speed, pitch) for seconds in self._words(text)])
        if self.silent_word and self.silent_word in lowered:
            return np.zeros_like(audio)
        if (self.loop_word and self.loop_word in lowered) or (self.retake_word and self.retake_word in lowered and seed is None):
            return np.tile(audio, LOOPS)
        if self.clip_word and self.clip_word in lowered:
            return np.clip(4 * audio, -1.0, 1.0)
        return audio

    def _words(self, text: str) -> list[float]:
        """Seconds of each word: letters at one rate, syllables (a Chinese
        character, a digit) each a word at another; at least one word."""
        seconds: list[float] = []
        for token in text.split():
            letters = 0
            for char in token:
                if char.isdigit() or script_of(char) in SYLLABIC:
                    seconds.append(self.seconds_per_syllable)
                elif char.isalpha():
                    letters += 1
            if letters:
                seconds.append(letters * self.seconds_per_letter)
        return seconds or [self.seconds_per_letter]

    def _word(self, seconds: float, pitch: float) -> np.ndarray:
        """A beep for 70 % of the word, then silence."""
        beep = int(0.7 * seconds * self.sample_rate)
        gap = int(0.3 * seconds * self.sample_rate)
        t = np.arange(beep) / self.sample_rate
        return np.concatenate([0.3 * np.sin(2 * np.pi * pitch * t), np.zeros(gap)]).astype(np.float32)

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
