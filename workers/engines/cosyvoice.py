"""CosyVoice2 (torch, GPU): FunAudioLLM's multilingual voice, driven through
upstream's own Python API at commit ace7c47 (``UPSTREAM_COMMIT``).

Upstream's code is on no package index. The model names a checkout of that
commit as ``files.source`` (``scripts/gpu_install.sh`` makes one); its folder
and ``third_party/Matcha-TTS`` go on ``sys.path`` when the model loads. Without
``files.source`` the code must already be importable. Another API generation is
refused at load with what differs (``check_upstream_api``).

Voices, by ``voice.mode``:

* ``zero_shot``: a reference speaker (a clip of at most 30 s, at 16 kHz or
  more, and its transcript), registered once per process with
  ``add_zero_shot_spk(prompt_text, prompt_wav_path, id)``; every segment then
  passes only ``zero_shot_spk_id``, as upstream's example does.
* ``instruct2``: a registered reference speaker plus a style instruction
  (``voice.instruct``, ended with ``<|endofprompt|>`` here if it is not). At
  ace7c47, ``inference_instruct2`` with a registered speaker uses the stored
  transcript as the LLM prompt and drops the instruction (upstream issue
  #1400); upstream's example passes the clip itself instead, which extracts it
  again on every call. This engine keeps, once per voice and instruction, a
  copy of the speaker's entry whose prompt is the instruction: the model gets
  exactly what the example gives it, and the clip is extracted once.
* ``sft`` (or ``default``): a speaker stored in the model directory's
  ``spk2info.pt``. CosyVoice2-0.5B ships none, so the registry refuses such a
  voice (configs/registry.py) where the directory lacks the file, and the
  engine refuses one whose speaker the file does not name. An entry with an
  ``embedding`` (an SFT model's speakers) is spoken with ``inference_sft``; one
  saved by upstream's ``save_spkinfo()`` (a zero-shot entry) with
  ``inference_zero_shot``, as upstream's example does after saving.

Several segments in flight: one loaded model serves concurrent calls from
several threads, as upstream's own gRPC server drives it (``chorus worker
--inflight N``). Two things make that safe and cheap here: segments are never
streamed (``CosyVoice2Model.tts(stream=True)`` grows the model-wide
``token_hop_len`` as it goes, so concurrent streams change each other's chunk
sizes), and upstream's ``torch.cuda.empty_cache()`` and
``current_stream().synchronize()`` at the end of every ``tts()`` call are
switched off (``_TorchWithoutPerCallRelease``): freeing the allocator's cache
while other calls run makes them allocate again, and the synchronize waits on
the other threads' work. Memory is released once per job instead
(``release_memory``). ``options.release_per_segment = true`` keeps upstream's
behaviour.

torch is never imported at module level: this module imports with numpy only
(API hosts never import torch); upstream (which pulls torch) is imported in
``load``.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import soxr

from chorus.configs import Model, Voice
from chorus.configs.registry import SFT_MODES, SPEAKER_FILE, RegistryError, resolve_path, sft_refusal
from chorus.tasks.errors import EngineError, ModelLoadError, VoiceMismatch

log = logging.getLogger(__name__)

UPSTREAM_COMMIT = "ace7c47"  # FunAudioLLM/CosyVoice, 2026-03-16 ("Merge pull request #1850")
UPSTREAM_REPOSITORY = "https://github.com/FunAudioLLM/CosyVoice"
MATCHA = Path("third_party") / "Matcha-TTS"  # the submodule upstream imports as `matcha`
INSTALL_HINT = (
    f"install the gpu extra (pip install '.[gpu]') and name a checkout of {UPSTREAM_REPOSITORY} at commit "
    f"{UPSTREAM_COMMIT} (with third_party/Matcha-TTS) as the model's files.source; scripts/gpu_install.sh does both"
)
SPEAKER_MODES = ("zero_shot", "instruct2")
END_OF_PROMPT = "<|endofprompt|>"  # CosyVoice2's instruct prompts end with it (upstream's example.py)
PROMPT_MIN_RATE = 16000  # upstream's load_wav asserts this much
PROMPT_MAX_SECONDS = 30.0  # upstream's speech tokenizer asserts at most this much
GPU_OPTIONS = ("load_jit", "load_trt", "load_vllm", "fp16")


# -- upstream's code ----------------------------------------------------------------------


def source_paths(model: Model) -> list[Path]:
    """What goes on ``sys.path`` for the model's upstream checkout (none when
    the model names no ``files.source``)."""
    if "source" not in model.files:
        return []
    try:
        root = model.file("source")
    except RegistryError as exc:
        raise ModelLoadError(str(exc)) from None
    return [root, root / MATCHA]


def _put_on_path(paths: list[Path]) -> None:
    for path in reversed(paths):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


# (where, the parameters it must take first, in this order, after self)
_EXPECTED_API: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("CosyVoice2.__init__", ("model_dir", "load_jit", "load_trt", "load_vllm", "fp16")),
    ("CosyVoice2.add_zero_shot_spk", ("prompt_text", "prompt_wav", "zero_shot_spk_id")),
    ("CosyVoice2.inference_sft", ("tts_text", "spk_id", "stream", "speed")),
    ("CosyVoice2.inference_zero_shot", ("tts_text", "prompt_text", "prompt_wav", "zero_shot_spk_id", "stream", "speed")),
    ("CosyVoice2.inference_instruct2", ("tts_text", "instruct_text", "prompt_wav", "zero_shot_spk_id", "stream", "speed")),
    ("CosyVoiceFrontEnd._extract_text_token", ("text",)),
)


def check_upstream_api(classes: dict[str, type]) -> list[str]:
    """Where the installed upstream differs from the API this engine is written
    for (commit ace7c47): one line per difference, none when it matches."""
    problems = []
    for where, expected in _EXPECTED_API:
        class_name, _, method = where.partition(".")
        function = getattr(classes.get(class_name), method, None)
        if function is None:
            problems.append(f"{where} is missing")
            continue
        names = [p for p in inspect.signature(function).parameters if p != "self"]
        if tuple(names[: len(expected)]) != expected:
            problems.append(f"{where}({', '.join(names)}) where ({', '.join(expected)}, ...) is expected")
    return problems


def _import_upstream(model: Model) -> dict[str, Any]:
    paths = source_paths(model)
    for path in paths:
        if not path.is_dir():
            raise ModelLoadError(f"model {model.name!r}: files.source: {path} is not a directory ({INSTALL_HINT})")
    _put_on_path(paths)
    try:
        from cosyvoice.cli import cosyvoice as cli_module
        from cosyvoice.cli import model as model_module
        from cosyvoice.cli.frontend import CosyVoiceFrontEnd
    except ImportError as exc:
        # the distribution to install: "cosyvoice" for "cosyvoice.cli", "matcha" for "matcha.models" ...
        missing = exc.name.partition(".")[0] if exc.name else str(exc)
        raise ModelLoadError(
            f"model {model.name!r}: engine {model.engine!r} needs {missing!r}, which is not importable ({INSTALL_HINT})"
        ) from exc
    if paths and not Path(cli_module.__file__).resolve().is_relative_to(paths[0].resolve()):
        raise ModelLoadError(
            f"model {model.name!r}: cosyvoice was already imported from {cli_module.__file__}, not from files.source {paths[0]}"
        )
    problems = check_upstream_api({"CosyVoice2": cli_module.CosyVoice2, "CosyVoiceFrontEnd": CosyVoiceFrontEnd})
    if problems:
        raise ModelLoadError(
            f"model {model.name!r}: the CosyVoice at {Path(cli_module.__file__).parent.parent} is another API generation than "
            f"the one this engine is written for (upstream commit {UPSTREAM_COMMIT}): {'; '.join(problems)} ({INSTALL_HINT})"
        )
    return {"cli": cli_module, "model": model_module}


class _CudaWithoutPerCallRelease:
    """torch.cuda as cosyvoice.cli.model sees it: all of it, except that the
    cache release and stream synchronisation at the end of every ``tts()``
    call do nothing. Output reaches the caller through ``.cpu()``, which waits
    for the work it needs."""

    def __init__(self, cuda: Any) -> None:
        self._cuda = cuda

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cuda, name)

    def empty_cache(self) -> None:
        pass

    def current_stream(self, device: Any = None) -> Any:
        return _StreamWithoutSynchronize(self._cuda.current_stream(device))


class _StreamWithoutSynchronize:
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def synchronize(self) -> None:
        pass


class _TorchWithoutPerCallRelease:
    """torch for cosyvoice.cli.model only (see the module's docstring)."""

    def __init__(self, torch: Any) -> None:
        self._torch = torch
        self.cuda = _CudaWithoutPerCallRelease(torch.cuda)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)


def keep_release_out_of_tts(model_module: Any) -> bool:
    """Switch off upstream's per-call cache release in ``tts()`` (for the whole
    process: it holds one model). True if it was on."""
    current = model_module.torch
    if isinstance(current, _TorchWithoutPerCallRelease):
        return False
    model_module.torch = _TorchWithoutPerCallRelease(current)
    return True


def _no_progress_bar(iterable: Any, *args: Any, **kwargs: Any) -> Any:
    """Upstream wraps each call's sentences in a tqdm bar: per segment, in a
    worker, that is only log noise."""
    return iterable


# -- resampling -----------------------------------------------------------------------------


class Resampler:
    """soxr (libsoxr, high quality) for one rate pair. The filter is designed
    once, when the stream is built; each segment is resampled whole and the
    stream cleared for the next. Build one per pair and thread with
    ``resampler()``."""

    constructed = 0  # how many were built in this process (tests read it)

    def __init__(self, source_rate: int, target_rate: int) -> None:
        self.source_rate, self.target_rate = source_rate, target_rate
        self._stream = soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")
        Resampler.constructed += 1

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        out = self._stream.resample_chunk(np.ascontiguousarray(samples, dtype=np.float32), last=True)
        self._stream.clear()
        return out


_per_thread = threading.local()


def resampler(source_rate: int, target_rate: int) -> Resampler:
    """This thread's resampler of one rate pair, built once (a soxr stream keeps
    state within a call, so threads never share one)."""
    cache = _per_thread.__dict__.setdefault("resamplers", {})
    pair = (source_rate, target_rate)
    if pair not in cache:
        cache[pair] = Resampler(source_rate, target_rate)
    return cache[pair]


# -- the engine -----------------------------------------------------------------------------


def _to_numpy(speech: Any) -> np.ndarray:
    """A (1, T) torch tensor (or anything with .cpu().numpy()) as 1-D float32."""
    if hasattr(speech, "cpu"):
        speech = speech.cpu()
    if hasattr(speech, "numpy"):
        speech = speech.numpy()
    return np.asarray(speech, dtype=np.float32).reshape(-1)


def instruction_prompt(instruct: str) -> str:
    """An instruct2 instruction as CosyVoice2 wants it: ending with <|endofprompt|>."""
    text = instruct.strip()
    return text if text.endswith(END_OF_PROMPT) else text + END_OF_PROMPT


def _speaks_words(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


class CosyVoiceEngine:
    aligns_words = False  # CosyVoice2 gives no word alignments: segments are timed by sentence

    def __init__(self, model: Model, cosyvoice: Any, uses_cuda: bool, torch: Any = None) -> None:
        self.model = model
        self.cosyvoice = cosyvoice
        self.uses_cuda = uses_cuda
        self._torch = torch
        self.provider = "cuda:0" if uses_cuda else "cpu"
        self.sample_rate = model.sample_rate
        self.native_rate = int(cosyvoice.sample_rate)
        self.builtin_speakers = frozenset(str(s) for s in cosyvoice.list_available_spks())
        self._speakers: set[str] = set()
        self._derived: dict[str, set[str]] = {}  # registered speaker -> its instruct2 entries
        self._lock = threading.Lock()
        self.speaker_registrations = 0

    @classmethod
    def load(cls, model: Model, threads: int = 0) -> CosyVoiceEngine:
        try:
            model_dir = model.file("model_dir")
        except RegistryError as exc:
            raise ModelLoadError(str(exc)) from None
        if not model_dir.is_dir():
            # upstream would take the name for a ModelScope id and try to download it
            raise ModelLoadError(f"model {model.name!r}: model_dir not found: {model_dir}")
        if not (model_dir / "cosyvoice2.yaml").is_file():
            raise ModelLoadError(f"model {model.name!r}: {model_dir} has no cosyvoice2.yaml: not a CosyVoice2 model directory")
        options = model.options
        if options.get("stream"):
            raise ModelLoadError(
                f"model {model.name!r}: options.stream is not supported: upstream's streaming grows the model-wide "
                "token_hop_len as it goes, which concurrent segments would share; Chorus synthesises whole segments"
            )
        if model.device not in ("cpu", "cuda"):
            raise ModelLoadError(f"model {model.name!r}: device {model.device!r} (cosyvoice2 runs on cpu or cuda)")
        uses_cuda = model.device == "cuda"
        if not uses_cuda:
            wanted = [name for name in GPU_OPTIONS if options.get(name)]
            if wanted:
                raise ModelLoadError(
                    f"model {model.name!r}: {', '.join(wanted)} need(s) device = \"cuda\" (upstream turns them off without CUDA)"
                )
            if "torch" not in sys.modules:
                # Upstream runs on CUDA whenever it sees a GPU: hide it before torch looks.
                os.environ["CUDA_VISIBLE_DEVICES"] = ""

        upstream = _import_upstream(model)
        torch = sys.modules["torch"]
        if uses_cuda and not torch.cuda.is_available():
            # upstream would quietly fall back to the CPU, many times slower
            raise ModelLoadError(f"model {model.name!r}: device is cuda but torch sees no CUDA device")
        if not uses_cuda and torch.cuda.is_available():
            raise ModelLoadError(
                f"model {model.name!r}: device is cpu but torch sees a GPU, which upstream would use anyway: "
                "start the worker with CUDA_VISIBLE_DEVICES= (empty)"
            )
        kwargs: dict[str, Any] = {
            "load_jit": bool(options.get("load_jit", False)),
            "load_trt": bool(options.get("load_trt", False)),
            "load_vllm": bool(options.get("load_vllm", False)),
            "fp16": bool(options.get("fp16", uses_cuda)),
        }
        if "trt_concurrent" in options:  # TensorRT contexts: one per segment in flight
            kwargs["trt_concurrent"] = int(options["trt_concurrent"])
        _check_writable_for_first_load(model, model_dir, kwargs)
        if kwargs["load_vllm"]:
            _register_with_vllm(model)
        if threads:
            torch.set_num_threads(threads)
        try:
            cosyvoice = upstream["cli"].CosyVoice2(str(model_dir), **kwargs)
        except Exception as exc:  # missing weights, CUDA out of memory, bad yaml ...
            raise ModelLoadError(f"model {model.name!r}: CosyVoice2 failed to load {model_dir}: {type(exc).__name__}: {exc}") from exc
        if not options.get("release_per_segment", False):
            keep_release_out_of_tts(upstream["model"])
        upstream["cli"].tqdm = _no_progress_bar
        engine = cls(model, cosyvoice, uses_cuda, torch)
        log.info(
            "cosyvoice2 %s loaded from %s (upstream %s at %s; %s, %s), native %d Hz, output %d Hz, stored speakers: %s",
            model.name, model_dir, UPSTREAM_COMMIT, Path(upstream["cli"].__file__).parent.parent,
            engine.provider, ", ".join(f"{k}={v}" for k, v in kwargs.items()), engine.native_rate, engine.sample_rate,
            ", ".join(sorted(engine.builtin_speakers)) or "none",
        )
        return engine

    # -- reference speakers ---------------------------------------------------------------

    def has_speaker(self, speaker_id: str) -> bool:
        return speaker_id in self._speakers

    @property
    def _spk2info(self) -> dict:
        return self.cosyvoice.frontend.spk2info

    def register_speaker(self, speaker_id: str, prompt_text: str, prompt_audio: Path) -> None:
        """Extract a reference speaker once; later calls for the same id do nothing."""
        with self._lock:
            if speaker_id in self._speakers:
                return
            if speaker_id in self.builtin_speakers:
                raise VoiceMismatch(f"speaker id {speaker_id!r} would replace a speaker stored in the model's {SPEAKER_FILE}")
            if not prompt_text:
                raise VoiceMismatch(f"speaker {speaker_id!r}: empty prompt text")
            path = Path(prompt_audio)
            if not path.is_file():
                raise VoiceMismatch(f"speaker {speaker_id!r}: prompt audio not found: {path}")
            _check_prompt(speaker_id, path)
            try:
                added = self.cosyvoice.add_zero_shot_spk(prompt_text, str(path), speaker_id)
            except Exception as exc:
                raise EngineError(f"speaker {speaker_id!r}: registration failed: {type(exc).__name__}: {exc}") from exc
            if added is False:
                raise EngineError(f"speaker {speaker_id!r}: CosyVoice refused the prompt {path}")
            self._speakers.add(speaker_id)
            self.speaker_registrations += 1
        log.info("cosyvoice2 %s: registered speaker %s from %s", self.model.name, speaker_id, path)

    def register_voice(self, voice: Voice) -> None:
        """Register a static voice's reference speaker (a local or package: path);
        check an sft voice's speaker. (workers/model.py registers through
        ``register_speaker``; this is for callers that hold only the voice.)"""
        if voice.mode in SFT_MODES:
            self._stored_speaker(voice)
            return
        if voice.mode not in SPEAKER_MODES:
            raise VoiceMismatch(f"voice {voice.id!r}: unknown CosyVoice mode {voice.mode!r}")
        if not voice.prompt_text or not voice.prompt_audio:
            raise VoiceMismatch(f"voice {voice.id!r} ({voice.mode}) needs prompt_text and prompt_audio")
        try:
            path = resolve_path(voice.prompt_audio, f"voice {voice.id!r} prompt_audio")
        except RegistryError as exc:
            raise VoiceMismatch(str(exc)) from None
        self.register_speaker(voice.id, voice.prompt_text, path)

    def forget_speaker(self, speaker_id: str) -> None:
        with self._lock:
            if speaker_id not in self._speakers:
                return  # never drop a stored speaker
            self._speakers.discard(speaker_id)
            for key in {speaker_id, *self._derived.pop(speaker_id, set())}:
                self._spk2info.pop(key, None)

    def _stored_speaker(self, voice: Voice) -> str:
        speaker = None if voice.speaker is None else str(voice.speaker)
        if speaker is None or speaker not in self.builtin_speakers:
            model_dir = self.model.files.get("model_dir", "?")
            raise VoiceMismatch(sft_refusal(self.model.name, voice.id, speaker, model_dir, sorted(self.builtin_speakers)))
        return speaker

    def _instruct2_entry(self, voice: Voice, instruction: str) -> str:
        """The id of the speaker entry whose LLM prompt is the instruction, made
        once per (voice, instruction) from the registered speaker's entry."""
        digest = hashlib.sha1(instruction.encode("utf-8")).hexdigest()[:12]
        key = f"{voice.id}#instruct2-{digest}"
        with self._lock:
            if key not in self._spk2info:
                tokens, length = self.cosyvoice.frontend._extract_text_token(instruction)
                self._spk2info[key] = {**self._spk2info[voice.id], "prompt_text": tokens, "prompt_text_len": length}
                self._derived.setdefault(voice.id, set()).add(key)
        return key

    # -- synthesis ------------------------------------------------------------------------

    def synthesize(self, text: str, voice: Voice, seed: int | None = None, speed: float = 1.0) -> np.ndarray:
        """``seed``: for another take of a segment judged bad (workers/synthesize.py).
        The LLM samples speech tokens from torch's global generator
        (``cosyvoice.utils.common``: ``ras_sampling``, ``multinomial``), so
        seeding it, as upstream's ``vllm_example.py`` does before each call
        (``set_all_random_seed``), changes the take; the flow stage's noise is
        fixed at load. The generator is the process's: with segments in flight
        the seeded take differs, but is not reproducible. With ``load_vllm``
        tokens are sampled inside vLLM, which does not read it: takes differ
        there all the same (unseeded sampling).

        ``speed`` goes to upstream's ``inference_*`` calls as their ``speed``:
        the flow's mel spectrogram is stretched to 1/speed of its frames before
        the vocoder (``token2wav``), which upstream allows only without
        streaming, as segments are spoken here."""
        cosyvoice = self.cosyvoice
        if seed is not None and self._torch is not None:
            self._torch.manual_seed(seed)  # every device's generator, CUDA's too
        if voice.mode in SFT_MODES:
            speaker = self._stored_speaker(voice)
            if "embedding" in self._spk2info[speaker]:  # an SFT model's speaker
                run = lambda: cosyvoice.inference_sft(text, speaker, stream=False, speed=speed)  # noqa: E731
            else:  # a zero-shot speaker saved with save_spkinfo()
                run = lambda: cosyvoice.inference_zero_shot(  # noqa: E731
                    text, "", "", zero_shot_spk_id=speaker, stream=False, speed=speed)
        elif voice.mode in SPEAKER_MODES:
            if not self.has_speaker(voice.id):
                raise VoiceMismatch(f"voice {voice.id!r}: speaker {voice.id!r} not registered with this worker")
            if voice.mode == "zero_shot":
                run = lambda: cosyvoice.inference_zero_shot(  # noqa: E731
                    text, "", "", zero_shot_spk_id=voice.id, stream=False, speed=speed)
            else:
                if not voice.instruct or not voice.instruct.strip():
                    raise VoiceMismatch(f"voice {voice.id!r} (instruct2) has no instruction")
                instruction = instruction_prompt(voice.instruct)
                key = self._instruct2_entry(voice, instruction)
                run = lambda: cosyvoice.inference_instruct2(  # noqa: E731
                    text, instruction, "", zero_shot_spk_id=key, stream=False, speed=speed)
        else:
            raise VoiceMismatch(f"voice {voice.id!r}: unknown CosyVoice mode {voice.mode!r}")

        try:
            chunks = [_to_numpy(output["tts_speech"]) for output in run()]
        except Exception as exc:  # torch, onnxruntime and the frontend raise assorted types
            raise EngineError(f"cosyvoice2 failed on {text[:40]!r}: {type(exc).__name__}: {exc}") from exc
        if not chunks:
            if _speaks_words(text):
                raise EngineError(f"cosyvoice2 gave no audio for {text[:40]!r}")
            # upstream drops text that is only punctuation: nothing to say
            return np.zeros(0, dtype=np.float32)
        audio = np.concatenate(chunks)
        if self.native_rate != self.sample_rate:
            audio = resampler(self.native_rate, self.sample_rate)(audio)
        return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False)

    def release_memory(self) -> None:
        """Once per job: what upstream would do after every segment. Registered
        speakers stay (extracting them is the costly part)."""
        if self.uses_cuda and self._torch is not None:
            self._torch.cuda.synchronize()
            self._torch.cuda.empty_cache()


def _check_prompt(speaker_id: str, path: Path) -> None:
    """Upstream's asserts on a prompt, as messages: at least 16 kHz, at most 30 s."""
    try:
        info = soundfile.info(str(path))
    except Exception as exc:  # soundfile raises its own RuntimeError subclasses
        raise VoiceMismatch(f"speaker {speaker_id!r}: prompt audio {path} is not readable audio: {exc}") from None
    if info.samplerate < PROMPT_MIN_RATE:
        raise VoiceMismatch(
            f"speaker {speaker_id!r}: prompt audio is {info.samplerate} Hz; CosyVoice needs at least {PROMPT_MIN_RATE} Hz"
        )
    if info.duration > PROMPT_MAX_SECONDS:
        raise VoiceMismatch(
            f"speaker {speaker_id!r}: prompt audio is {info.duration:.1f} s; CosyVoice takes at most {PROMPT_MAX_SECONDS:.0f} s"
        )


def _check_writable_for_first_load(model: Model, model_dir: Path, kwargs: dict[str, Any]) -> None:
    """load_trt and load_vllm write into the model directory on their first load
    (a TensorRT plan; vLLM's export of the LLM), which takes minutes."""
    precision = "fp16" if kwargs["fp16"] else "fp32"
    writes = []
    if kwargs["load_trt"] and not (model_dir / f"flow.decoder.estimator.{precision}.mygpu.plan").is_file():
        writes.append(f"load_trt builds flow.decoder.estimator.{precision}.mygpu.plan")
    if kwargs["load_vllm"] and not (model_dir / "vllm").is_dir():
        writes.append("load_vllm exports the LLM to vllm/")
    if not writes:
        return
    if not os.access(model_dir, os.W_OK):
        raise ModelLoadError(
            f"model {model.name!r}: {' and '.join(writes)} in {model_dir} on first load, which is not writable: "
            "load once where it is (or copy the results in)"
        )
    log.warning("model %s: %s in %s; this first load takes minutes", model.name, " and ".join(writes), model_dir)


def _register_with_vllm(model: Model) -> None:
    """What upstream's vllm_example.py does before loading: vLLM must know
    CosyVoice2's LLM class."""
    try:
        from cosyvoice.vllm.cosyvoice2 import CosyVoice2ForCausalLM
        from vllm import ModelRegistry
    except ImportError as exc:
        raise ModelLoadError(
            f"model {model.name!r}: load_vllm needs vllm 0.9.0 (pip install '.[vllm]'), as upstream's README says: {exc}"
        ) from exc
    ModelRegistry.register_model("CosyVoice2ForCausalLM", CosyVoice2ForCausalLM)
