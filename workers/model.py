"""The one model a synthesis worker process holds.

It is loaded in ``worker_process_init``, that is in the pool child that runs the
tasks, never in the parent: a CUDA context does not survive a fork, and a
model loaded in the parent would be copied into every child anyway. A short
warm-up synthesis runs before the process takes its first task.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import tempfile
import time
from pathlib import Path

from celery.signals import worker_process_init

from chorus.configs import Model, Voice, get_settings
from chorus.configs.registry import resolve_path
from chorus.tasks import clients
from chorus.tasks.errors import ModelLoadError, VoiceMismatch
from chorus.tasks.state.voices import S3_PREFIX
from chorus.workers.engines import Engine, load_engine

log = logging.getLogger(__name__)

_engine: Engine | None = None
loads = 0  # how many times this process loaded its model (should stay 1)


def configured_model() -> Model:
    name = get_settings().model
    if not name:
        raise ModelLoadError("CHORUS_MODEL is not set: a synthesis worker needs the name of its model")
    registry = clients.registry()
    try:
        return registry.models[name]
    except KeyError:
        raise ModelLoadError(f"unknown model {name!r} (registry has: {', '.join(registry.models)})") from None


def engine() -> Engine:
    """The process's engine, loaded on first use (at process start in a worker)."""
    global _engine, loads
    if _engine is None:
        model = configured_model()
        started = time.perf_counter()
        loaded = load_engine(model, threads=get_settings().onnx_threads)
        own_voices = [v for v in clients.registry().voices.values() if v.model == model.name]
        for voice in own_voices:  # reference speakers from the registry: once, now
            ensure_speaker(loaded, voice)
        if own_voices:
            loaded.synthesize("Ready.", own_voices[0])  # warm-up before the first task
        _engine, loads = loaded, loads + 1
        # The model and everything imported live as long as the process: out
        # of the collector's sight, the collection after each job
        # (release_memory) scans only what tasks left behind, and does not
        # hold the GIL long while the process's other segments wait.
        gc.collect()
        gc.freeze()
        seconds = time.perf_counter() - started
        provider = getattr(loaded, "provider", model.device)
        log.info("model %s loaded in pid %d in %.2f s, running on %s", model.name, os.getpid(), seconds, provider)
        clients.fleet().model_loaded(node_name(), model.name, os.getpid(), provider, seconds)
    return _engine


def ensure_speaker(engine: Engine, voice: Voice) -> None:
    """Register a voice's reference speaker with the engine, once per process:
    the speaker embedding is extracted here and never again per segment."""
    if not voice.needs_speaker or engine.has_speaker(voice.id):
        return
    if not (voice.prompt_audio and voice.prompt_text):
        raise VoiceMismatch(f"voice {voice.id!r} ({voice.mode}) has no reference audio and transcript")
    with tempfile.TemporaryDirectory(prefix="chorus-speaker-") as tmp:
        if voice.prompt_audio.startswith(S3_PREFIX):
            path = Path(tmp) / "prompt.wav"
            path.write_bytes(clients.storage().get_bytes(voice.prompt_audio[len(S3_PREFIX) :]))
        else:
            path = resolve_path(voice.prompt_audio, f"voice {voice.id!r}")
        engine.register_speaker(voice.id, voice.prompt_text, path)
    clients.fleet().speaker_registered(node_name())
    log.info("speaker of voice %s registered", voice.id)


def node_name() -> str:
    """This worker's Celery node name (``chorus worker`` passes it down)."""
    return get_settings().worker_name or f"{get_settings().model}@{socket.gethostname()}"


@worker_process_init.connect
def _load_at_process_start(**_: object) -> None:
    try:
        engine()
    except Exception as exc:  # whatever the engine raised, the worker cannot serve
        # One clear line, then take the whole worker down with a non-zero exit
        # (SIGQUIT is Celery's cold shutdown, exit status 1): a pool that keeps
        # restarting a child that cannot load its model serves nobody.
        log.critical("%s: %s", type(exc).__name__, exc)
        os.kill(os.getppid(), signal.SIGQUIT)
        os._exit(1)
