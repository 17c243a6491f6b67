"""TTS engines. Each is loaded once per worker process; ``load_engine`` picks the
class named by the model's ``engine`` field and imports only that one."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from chorus.configs import Model
from chorus.tasks.errors import ModelLoadError
from chorus.workers.engines.base import Engine

# engine name -> "module:Class"; imported lazily so a Piper worker never imports
# torch and a stand-in never imports onnxruntime.
ENGINES = {
    "piper": "chorus.workers.engines.piper:PiperEngine",
    "cosyvoice2": "chorus.workers.engines.cosyvoice:CosyVoiceEngine",
    "tone": "chorus.workers.engines.tone:ToneEngine",
    "sim": "chorus.workers.engines.sim:SimEngine",  # a GPU's time, no CPU: scheduling benchmarks
}


def import_paths(model: Model) -> list[Path]:
    """Folders the model's engine code is imported from besides the installed
    packages: CosyVoice's upstream checkout (``files.source``); none for others."""
    if model.engine == "cosyvoice2":
        from chorus.workers.engines.cosyvoice import source_paths

        return source_paths(model)
    return []


def load_engine(model: Model, threads: int = 0) -> Engine:
    try:
        target = ENGINES[model.engine]
    except KeyError:
        raise ModelLoadError(
            f"model {model.name!r}: unknown engine {model.engine!r} (known: {', '.join(ENGINES)})"
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        engine_class = getattr(import_module(module_name), class_name)
    except ImportError as exc:
        raise ModelLoadError(f"model {model.name!r}: engine {model.engine!r} needs {exc.name!r}, which is not installed") from exc
    return engine_class.load(model, threads=threads)


__all__ = ["ENGINES", "Engine", "import_paths", "load_engine"]
