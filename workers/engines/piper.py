"""Piper (onnxruntime, CPU): the default voice.

The ONNX session is built here rather than by ``PiperVoice.load`` so the number
of onnxruntime threads can be set: several workers on one host divide the cores
between them instead of each spinning up one thread per core.

Word timings: the model is patched in memory, once per worker, to also give
the samples each phoneme took (``piper.patch_voice_with_alignment``; needs the
``onnx`` package, the ``piper-tts[alignment]`` extra), and the session built
from the patched bytes with our own options. ``synthesize_words`` turns the
alignments into spans of the spoken words (``piper_words``). Without ``onnx``,
or for a model that cannot be patched, the engine speaks as before and says it
does not align (segments are timed by sentence).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from chorus.configs import Model, Voice
from chorus.tasks.errors import EngineError, ModelLoadError, VoiceMismatch
from chorus.tasks.text.words import words as text_words
from chorus.workers.engines import piper_words

log = logging.getLogger(__name__)

# Piper's default scales every sentence to full peak; that makes loud and quiet
# sentences alike and clips in lossy encoders. Keep the model's own level.
_SYNTHESIS = SynthesisConfig(normalize_audio=False)


def providers_for(device: str) -> list[str]:
    """onnxruntime providers from the model's device. CUDA needs the
    onnxruntime-gpu package; the worker is pinned to its GPU by
    CUDA_VISIBLE_DEVICES, so device 0 is always the right one."""
    if device == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def aligned_model(onnx_path: Path) -> bytes | None:
    """The model's bytes patched to give phoneme alignments; None without the
    ``onnx`` package or for a model the patch does not fit."""
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        log.warning("piper: the onnx package is not installed: no word timings (install piper-tts[alignment])")
        return None
    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:  # protobuf's errors for a file that is no model: onnxruntime says what is wrong
        log.warning("piper: onnx cannot read %s (%s): no word timings", onnx_path.name, type(exc).__name__)
        return None
    try:
        add_alignment_output(model)
    except ValueError as exc:  # no single Ceil tensor, or already an output (a model patched on disk)
        if "already" not in str(exc):
            log.warning("piper: %s cannot give alignments (%s): no word timings", onnx_path.name, exc)
            return None
    return model.SerializeToString()


class PiperEngine:
    def __init__(self, model: Model, voice: PiperVoice, provider: str, aligns_words: bool = False) -> None:
        self.model = model
        self.voice = voice
        self.sample_rate = voice.config.sample_rate
        self.provider = provider
        self.aligns_words = aligns_words
        # Books repeat their words: each word's sounds are phonemised once.
        self._sounds = functools.lru_cache(maxsize=65536)(self._sounds_of)

    @classmethod
    def load(cls, model: Model, threads: int = 0, word_timings: bool = True) -> PiperEngine:
        """``word_timings`` False loads the model as it is (no alignments: a
        benchmark's baseline)."""
        onnx_path, config_path = model.file("model"), model.file("config")
        for path in (onnx_path, config_path):
            if not path.is_file():
                raise ModelLoadError(f"model {model.name!r}: file not found: {path}")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = providers_for(model.device)
        try:
            # The file as it is first: a file that is no model fails here at
            # once, before the slower import of onnx for the patch.
            session = onnxruntime.InferenceSession(str(onnx_path), sess_options=options, providers=providers)
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            aligned = aligned_model(onnx_path) if word_timings else None
            if aligned is not None:
                session = onnxruntime.InferenceSession(aligned, sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime and json raise assorted types for a bad file
            raise ModelLoadError(f"model {model.name!r}: cannot load {onnx_path.name}: {type(exc).__name__}: {exc}") from exc
        if config.sample_rate != model.sample_rate:
            raise ModelLoadError(
                f"model {model.name!r}: registry says {model.sample_rate} Hz, {config_path.name} says {config.sample_rate} Hz"
            )
        provider = session.get_providers()[0]
        if model.device == "cuda" and provider != "CUDAExecutionProvider":
            log.warning("piper %s: device is cuda but onnxruntime runs on %s (install onnxruntime-gpu)", model.name, provider)
        log.info("piper %s loaded, running on %s, threads %s", model.name, provider, threads or "auto")
        return cls(model, PiperVoice(session=session, config=config), provider, aligns_words=aligned is not None)

    def synthesize(self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0) -> np.ndarray:
        """``seed`` is ignored: Piper's VITS model draws its noise inside the
        ONNX graph, so two calls on the same text already differ (length and
        samples; checked), and onnxruntime offers no per-call seed for it
        (``onnxruntime.set_seed`` before a call does not make two calls equal).
        Another take is simply another call.

        ``speed`` divides the voice's own length scale (its config's
        ``inference.length_scale``; a phoneme's duration is multiplied by the
        scale), so 2.0 halves every phoneme and the voice's own pace stays the
        reference."""
        return self._speak(text, voice, speed, alignments=False)[0]

    def synthesize_words(
        self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0,
    ) -> tuple[np.ndarray, list[tuple[int, int]] | None]:
        """``synthesize``, and the (start, end) samples of each word of the text
        (``tasks/text/words.words``); None when they cannot be told apart."""
        samples, sentences = self._speak(text, voice, speed, alignments=self.aligns_words)
        if sentences is None:
            return samples, None
        return samples, piper_words.word_spans(piper_words.phoneme_words(sentences), text_words(text), self._sounds)

    def _sounds_of(self, word: str) -> int:
        return piper_words.sounds_in(self.voice.phonemize(word))

    def _speak(
        self, text: str, voice: Voice, speed: float, alignments: bool,
    ) -> tuple[np.ndarray, list[list[tuple[str, int]]] | None]:
        """The audio, and each sentence's (phoneme, samples) when asked for and given."""
        config = _SYNTHESIS
        if voice.speaker is not None or speed != 1.0:
            config = SynthesisConfig(
                normalize_audio=False,
                speaker_id=None if voice.speaker is None else int(voice.speaker),
                length_scale=None if speed == 1.0 else self.voice.config.length_scale / speed,
            )
        try:
            if alignments:
                chunks = list(self.voice.synthesize(text, config, include_alignments=True))
            else:
                chunks = list(self.voice.synthesize(text, config))
        except Exception as exc:  # onnxruntime and espeak raise assorted types
            raise EngineError(f"piper failed on {text[:40]!r}: {type(exc).__name__}: {exc}") from exc
        sentences: list[list[tuple[str, int]]] | None = None
        if alignments and all(chunk.phoneme_alignments is not None for chunk in chunks):
            sentences = [[(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments or ()] for chunk in chunks]
        if not chunks:
            return np.zeros(0, dtype=np.float32), sentences
        return np.concatenate([chunk.audio_float_array for chunk in chunks]).astype(np.float32, copy=False), sentences

    def has_speaker(self, speaker_id: str) -> bool:
        return False  # Piper voices are fixed; no reference speakers

    def register_speaker(self, speaker_id: str, prompt_text: str, prompt_audio: Path) -> None:
        raise VoiceMismatch("Piper cannot speak with a reference speaker")

    def forget_speaker(self, speaker_id: str) -> None:
        pass

    def release_memory(self) -> None:
        # onnxruntime's CPU arena keeps its blocks for the next run by design;
        # nothing to drop between jobs beyond what gc collects.
        pass
