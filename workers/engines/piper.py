"""Piper (onnxruntime, CPU): the default voice.

The ONNX session is built here rather than by ``PiperVoice.load`` so the number
of onnxruntime threads can be set: several workers on one host divide the cores
between them instead of each spinning up one thread per core.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from chorus.configs import Model, Voice
from chorus.tasks.errors import EngineError, ModelLoadError, VoiceMismatch

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


class PiperEngine:
    def __init__(self, model: Model, voice: PiperVoice, provider: str) -> None:
        self.model = model
        self.voice = voice
        self.sample_rate = voice.config.sample_rate
        self.provider = provider

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> PiperEngine:
        onnx_path, config_path = model.file("model"), model.file("config")
        for path in (onnx_path, config_path):
            if not path.is_file():
                raise ModelLoadError(f"model {model.name!r}: file not found: {path}")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(str(onnx_path), sess_options=options, providers=providers_for(model.device))
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
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
        return cls(model, PiperVoice(session=session, config=config), provider)

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
        config = _SYNTHESIS
        if voice.speaker is not None or speed != 1.0:
            config = SynthesisConfig(
                normalize_audio=False,
                speaker_id=None if voice.speaker is None else int(voice.speaker),
                length_scale=None if speed == 1.0 else self.voice.config.length_scale / speed,
            )
        try:
            chunks = [chunk.audio_float_array for chunk in self.voice.synthesize(text, config)]
        except Exception as exc:  # onnxruntime and espeak raise assorted types
            raise EngineError(f"piper failed on {text[:40]!r}: {type(exc).__name__}: {exc}") from exc
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

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
