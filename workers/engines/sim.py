"""A stand-in for GPU engines, for scheduling benchmarks: it costs what a GPU
would, in time, and nothing in CPU.

It is not a voice. Each call sleeps for a GPU's time and returns a quiet,
cheap tone as long as the text would take to say (the same letter and
syllable durations as the tone stand-in, divided by the job's speed, one
continuous tone so that every 10 ms window sounds), so its takes pass the
take check (tasks/audio/takes.py); run it at a low sample rate (8 kHz) so
that S3 and assembly stay cheap too.

One engine stands for ``devices`` simulated GPUs (option, default 1), so that
a single worker process with ``--inflight`` threads can stand for many of
them at a few megabytes each. A call is placed on the simulated GPU with the
fewest calls in flight, and takes

    time = (fixed_ms + ms_per_char x characters) x n ** batch_alpha

where n is the number of calls in flight on that GPU once it has joined
(itself included). With ``batch_alpha`` < 1 a GPU gains from concurrency:
n calls at once finish n ** (1 - batch_alpha) times sooner than one after
another; beyond ``batch_limit`` calls (option, default: none) a GPU gains
nothing more (the curve goes on linearly, each extra call adding the time
of the call at ``batch_limit``), as a GPU whose memory or compute is full.
n is taken when the call starts and held for its whole length: a simple
model, exact when every GPU's slots stay full, which is the case a
scheduling benchmark measures. ``gpu_seconds`` gives a segment's share of a
GPU's time at a given n, which is what a benchmark's ideal time adds up.

Options (the model's ``options`` in the registry): ``fixed_ms``,
``ms_per_char``, ``batch_alpha`` (1.0: no gain), ``batch_limit``,
``devices``, ``seconds_per_letter``, ``seconds_per_syllable``, ``level``
(the tone's amplitude).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from chorus.configs import Model, Voice
from chorus.tasks.errors import EngineError
from chorus.tasks.text.script import script_of

SYLLABIC = frozenset({"han", "kana", "hangul"})
PITCH_HZ = 220.0  # well below the Nyquist frequency of an 8 kHz model


class SimEngine:
    aligns_words = False  # a stand-in: segments are timed by sentence

    def __init__(self, model: Model) -> None:
        options = model.options
        self.model = model
        self.sample_rate = model.sample_rate
        self.provider = "sim"
        self.fixed_s = float(options.get("fixed_ms", 300.0)) / 1000
        self.per_char_s = float(options.get("ms_per_char", 10.0)) / 1000
        self.alpha = float(options.get("batch_alpha", 1.0))
        self.batch_limit = int(options.get("batch_limit", 0)) or None
        self.devices = int(options.get("devices", 1))
        self.seconds_per_letter = float(options.get("seconds_per_letter", 0.065))
        self.seconds_per_syllable = float(options.get("seconds_per_syllable", 0.22))
        self.level = float(options.get("level", 0.05))  # about -29 dBFS: sound to the take check, cheap to master
        if self.devices < 1 or self.fixed_s < 0 or self.per_char_s < 0 or not 0 <= self.alpha <= 1:
            raise EngineError(f"model {model.name!r}: sim options out of range: {options}")
        self._lock = threading.Lock()
        self._in_flight = [0] * self.devices
        self.calls = 0
        self.slept_s = 0.0  # sum of every call's sleep, for tests
        self.speakers: set[str] = set()
        self._tone_cache: dict[int, np.ndarray] = {}

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> SimEngine:
        return cls(model)

    # -- the cost model ------------------------------------------------------------

    def batch_factor(self, n: int) -> float:
        """How much longer one call takes with n in flight on its GPU than alone."""
        if self.batch_limit and n > self.batch_limit:
            at_limit = self.batch_limit**self.alpha
            return at_limit * n / self.batch_limit
        return float(n) ** self.alpha

    def call_seconds(self, text: str, n: int = 1) -> float:
        """One call's time on a GPU with n calls in flight."""
        return (self.fixed_s + self.per_char_s * len(text)) * self.batch_factor(n)

    def gpu_seconds(self, text: str, n: int = 1) -> float:
        """A call's share of its GPU's time when n run together: the GPU is
        busy call_seconds for n segments."""
        return self.call_seconds(text, n) / n

    # -- the engine protocol -------------------------------------------------------

    def synthesize(self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0) -> np.ndarray:
        if voice.needs_speaker and voice.id not in self.speakers:
            raise EngineError(f"speaker of voice {voice.id!r} is not registered")
        with self._lock:
            gpu = min(range(self.devices), key=self._in_flight.__getitem__)
            self._in_flight[gpu] += 1
            n = self._in_flight[gpu]
        seconds = self.call_seconds(text, n)
        try:
            time.sleep(seconds)  # the GPU works; this thread's CPU does not
        finally:
            with self._lock:
                self._in_flight[gpu] -= 1
                self.calls += 1
                self.slept_s += seconds
        return self._tone(round(self._duration(text) / speed * self.sample_rate))

    def _duration(self, text: str) -> float:
        """Seconds the text would take to say: letters at one rate, a Chinese
        character, kana, hangul syllable or digit each at another; at least one letter's."""
        letters = syllables = 0
        for char in text:
            if char.isdigit() or (char.isalpha() and script_of(char) in SYLLABIC):
                syllables += 1
            elif char.isalpha():
                letters += 1
        return max(1, letters) * self.seconds_per_letter + syllables * self.seconds_per_syllable

    def _tone(self, samples: int) -> np.ndarray:
        """A quiet sine of ``samples`` samples. One second of it is made once
        and tiled: no per-call trigonometry."""
        second = self._tone_cache.get(self.sample_rate)
        if second is None:
            t = np.arange(self.sample_rate) / self.sample_rate
            second = (self.level * np.sin(2 * np.pi * PITCH_HZ * t)).astype(np.float32)
            self._tone_cache[self.sample_rate] = second
        repeats = -(-samples // self.sample_rate)
        return np.tile(second, max(1, repeats))[:samples]

    def has_speaker(self, speaker_id: str) -> bool:
        return speaker_id in self.speakers

    def register_speaker(self, speaker_id: str, prompt_text: str, prompt_audio: Path) -> None:
        self.speakers.add(speaker_id)

    def forget_speaker(self, speaker_id: str) -> None:
        self.speakers.discard(speaker_id)

    def release_memory(self) -> None:
        pass
