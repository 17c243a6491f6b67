"""CosyVoice2 (torch, GPU): FunAudioLLM's multilingual voice.

Three kinds of voice, by ``voice.mode``:

* ``sft`` (or ``default``): one of the model's built-in speakers, named by
  ``voice.speaker`` (e.g. "中文女");
* ``zero_shot``: a reference speaker (a short clip and its transcript)
  registered once with ``register_speaker``/``register_voice``;
* ``instruct2``: a registered reference speaker plus a style instruction
  (``voice.instruct``).

A reference speaker is registered with CosyVoice's ``add_zero_shot_spk`` once
per process, so its speech tokens and speaker embedding are extracted once and
every segment after that passes only ``zero_shot_spk_id``.

torch is never imported at module level: this module imports with numpy only,
and ``cosyvoice`` (which pulls torch) is imported inside ``load``. Device state
is decided once, at load; nothing here touches the CUDA allocator per segment
(the synthesis task empties the cache once per job).
"""

from __future__ import annotations

import logging
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from configs import Model, Voice
from configs.registry import RegistryError, resolve_path
from tasks.errors import EngineError, ModelLoadError

log = logging.getLogger(__name__)

PROMPT_RATE = 16000  # CosyVoice's frontend wants reference clips at 16 kHz
SFT_MODES = ("sft", "default")
SPEAKER_MODES = ("zero_shot", "instruct2")
INSTALL_HINT = (
    "pip install .[cosyvoice] and put CosyVoice's source "
    "(https://github.com/FunAudioLLM/CosyVoice, with third_party/Matcha-TTS) on PYTHONPATH"
)


# -- resampling -------------------------------------------------------------------


class Resampler:
    """soxr (libsoxr, high quality) for one rate pair. The filter is designed
    once, when the stream is built; each segment is resampled whole and the
    stream cleared for the next. Build one per pair with ``resampler()``."""

    constructed = 0  # how many were built in this process (tests read it)

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.source_rate, self.target_rate = source_rate, target_rate
        self._stream = soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")
        Resampler.constructed += 1

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        out = self._stream.resample_chunk(np.ascontiguousarray(samples, dtype=np.float32), last=True)
        self._stream.clear()
        return out


@lru_cache(maxsize=16)
def resampler(source_rate: int, target_rate: int) -> Resampler:
    """The resampler of one rate pair, built once per process."""
    return Resampler(source_rate, target_rate)


# -- the engine -------------------------------------------------------------------


def _to_numpy(speech: Any) -> np.ndarray:
    """A (1, T) torch tensor (or anything with .cpu().numpy()) as 1-D float32."""
    if hasattr(speech, "cpu"):
        speech = speech.cpu()
    if hasattr(speech, "numpy"):
        speech = speech.numpy()
    return np.asarray(speech, dtype=np.float32).reshape(-1)


class CosyVoiceEngine:
    def __init__(self, model: Model, cosyvoice: Any, load_wav: Any, uses_cuda: bool) -> None:
        self.model = model
        self.cosyvoice = cosyvoice
        self._load_wav = load_wav
        self.uses_cuda = uses_cuda
        self.sample_rate = model.sample_rate
        self.native_rate = int(cosyvoice.sample_rate)
        self._resample = resampler(self.native_rate, self.sample_rate) if self.native_rate != self.sample_rate else None
        self.builtin_speakers = frozenset(str(s) for s in cosyvoice.list_available_spks())
        self._speakers: set[str] = set()
        self._lock = threading.Lock()
        self.speaker_registrations = 0

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> CosyVoiceEngine:
        try:
            model_dir = model.file("model_dir")
        except RegistryError as exc:
            raise ModelLoadError(str(exc)) from None
        if not model_dir.is_dir():
            raise ModelLoadError(f"model {model.name!r}: model_dir not found: {model_dir}")
        try:
            from cosyvoice.cli.cosyvoice import CosyVoice2
            from cosyvoice.utils.file_utils import load_wav
        except ImportError as exc:
            # the distribution to install: "cosyvoice" for "cosyvoice.cli", "matcha" for "matcha.models" ...
            missing = exc.name.partition(".")[0] if exc.name else str(exc)
            raise ModelLoadError(
                f"model {model.name!r}: engine {model.engine!r} needs {missing!r}, which is not importable ({INSTALL_HINT})"
            ) from exc

        uses_cuda = model.device == "cuda"
        torch = sys.modules.get("torch")  # CosyVoice imported it; a stand-in does not
        if uses_cuda and torch is not None and not torch.cuda.is_available():
            # CosyVoice would quietly fall back to the CPU, many times slower.
            raise ModelLoadError(f"model {model.name!r}: device is cuda but torch sees no CUDA device")
        if threads and torch is not None:
            torch.set_num_threads(threads)
        options = model.options
        kwargs: dict[str, Any] = {
            "load_jit": bool(options.get("load_jit", False)),
            "load_trt": bool(options.get("load_trt", False)),
            "fp16": bool(options.get("fp16", uses_cuda)),
        }
        if "load_vllm" in options:  # older CosyVoice2 releases lack the argument
            kwargs["load_vllm"] = bool(options["load_vllm"])
        try:
            cosyvoice = CosyVoice2(str(model_dir), **kwargs)
        except Exception as exc:  # missing weights, CUDA out of memory, bad yaml ...
            raise ModelLoadError(f"model {model.name!r}: CosyVoice2 failed to load {model_dir}: {type(exc).__name__}: {exc}") from exc
        engine = cls(model, cosyvoice, load_wav, uses_cuda)
        log.info(
            "cosyvoice2 %s loaded from %s (%s, %s), native %d Hz, output %d Hz",
            model.name, model_dir, "cuda" if uses_cuda else "cpu",
            ", ".join(f"{k}={v}" for k, v in kwargs.items()), engine.native_rate, engine.sample_rate,
        )
        return engine

    # -- reference speakers -------------------------------------------------------

    def has_speaker(self, speaker_id: str) -> bool:
        return speaker_id in self._speakers

    def register_speaker(self, speaker_id: str, prompt_text: str, prompt_audio: Path) -> None:
        """Extract a reference speaker once; later calls for the same id do nothing."""
        with self._lock:
            if speaker_id in self._speakers:
                return
            if speaker_id in self.builtin_speakers:
                raise EngineError(f"speaker id {speaker_id!r} would replace a built-in CosyVoice speaker")
            if not prompt_text:
                raise EngineError(f"speaker {speaker_id!r}: empty prompt text")
            path = Path(prompt_audio)
            if not path.is_file():
                raise EngineError(f"speaker {speaker_id!r}: prompt audio not found: {path}")
            try:
                speech_16k = self._load_wav(str(path), PROMPT_RATE)
                added = self.cosyvoice.add_zero_shot_spk(prompt_text, speech_16k, speaker_id)
            except Exception as exc:
                raise EngineError(f"speaker {speaker_id!r}: registration failed: {type(exc).__name__}: {exc}") from exc
            if added is False:
                raise EngineError(f"speaker {speaker_id!r}: CosyVoice refused the prompt {path}")
            self._speakers.add(speaker_id)
            self.speaker_registrations += 1
        log.info("cosyvoice2 %s: registered speaker %s from %s", self.model.name, speaker_id, path)

    def register_voice(self, voice: Voice) -> None:
        """Register a static voice's reference speaker (a local or package: path).
        Voices of the sft modes need nothing and are ignored."""
        if voice.mode not in SPEAKER_MODES:
            return
        if not voice.prompt_text or not voice.prompt_audio:
            raise EngineError(f"voice {voice.id!r} ({voice.mode}) needs prompt_text and prompt_audio")
        try:
            path = resolve_path(voice.prompt_audio, f"voice {voice.id!r} prompt_audio")
        except RegistryError as exc:
            raise EngineError(str(exc)) from None
        self.register_speaker(voice.id, voice.prompt_text, path)

    def forget_speaker(self, speaker_id: str) -> None:
        with self._lock:
            if speaker_id not in self._speakers:
                return  # never drop a built-in speaker
            self._speakers.discard(speaker_id)
            spk2info = getattr(getattr(self.cosyvoice, "frontend", None), "spk2info", None)
            if isinstance(spk2info, dict):
                spk2info.pop(speaker_id, None)

    # -- synthesis ----------------------------------------------------------------

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        mode = voice.mode
        snapshot: tuple[dict, dict] | None = None
        if mode in SFT_MODES:
            if voice.speaker is None or str(voice.speaker) not in self.builtin_speakers:
                raise EngineError(
                    f"voice {voice.id!r}: CosyVoice speaker {voice.speaker!r} unknown "
                    f"(model has: {', '.join(sorted(self.builtin_speakers))})"
                )
            run = lambda: self.cosyvoice.inference_sft(text, str(voice.speaker), stream=False)  # noqa: E731
        elif mode in SPEAKER_MODES:
            if not self.has_speaker(voice.id):
                raise EngineError(f"voice {voice.id!r}: speaker {voice.id!r} not registered with this worker")
            if mode == "zero_shot":
                run = lambda: self.cosyvoice.inference_zero_shot(text, "", "", zero_shot_spk_id=voice.id, stream=False)  # noqa: E731
            else:
                # CosyVoice's frontend_instruct2 deletes keys from the registered
                # speaker's spk2info entry in place (upstream issue #1357), which
                # breaks every later segment of the speaker; keep a copy to restore.
                spk2info = getattr(getattr(self.cosyvoice, "frontend", None), "spk2info", None)
                if isinstance(spk2info, dict) and isinstance(spk2info.get(voice.id), dict):
                    snapshot = (spk2info, dict(spk2info[voice.id]))
                run = lambda: self.cosyvoice.inference_instruct2(text, voice.instruct or "", "", zero_shot_spk_id=voice.id, stream=False)  # noqa: E731
        else:
            raise EngineError(f"voice {voice.id!r}: unknown CosyVoice mode {mode!r}")

        try:
            chunks = [_to_numpy(output["tts_speech"]) for output in run()]
        except Exception as exc:  # torch, onnxruntime and the frontend raise assorted types
            raise EngineError(f"cosyvoice2 failed on {text[:40]!r}: {type(exc).__name__}: {exc}") from exc
        finally:
            if snapshot is not None:
                spk2info, entry = snapshot
                spk2info[voice.id] = entry
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate(chunks)
        if self._resample is not None:
            audio = self._resample(audio)
        return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)

    def release_memory(self) -> None:
        # Registered speakers are kept on purpose (extracting them is the costly
        # part); the task calling this already runs gc.collect() and
        # torch.cuda.empty_cache() once per job. Per-job caches would go here.
        pass
