"""The one model a synthesis worker process holds.

It is loaded in ``worker_process_init``, that is in the pool child that runs the
tasks, never in the parent: a CUDA context does not survive a fork, and a
model loaded in the parent would be copied into every child anyway. A short
warm-up synthesis runs before the process takes its first task.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from celery.signals import worker_process_init

from configs import Model, get_settings
from tasks import context
from tasks.errors import ChorusError, ModelLoadError
from workers.engines import Engine, load_engine

log = logging.getLogger(__name__)

_engine: Engine | None = None
loads = 0  # how many times this process loaded its model (should stay 1)


def configured_model() -> Model:
    name = get_settings().model
    if not name:
        raise ModelLoadError("CHORUS_MODEL is not set: a synthesis worker needs the name of its model")
    registry = context.registry()
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
        warm_voice = next(v for v in context.registry().voices.values() if v.model == model.name)
        loaded.synthesize("Ready.", warm_voice)
        _engine, loads = loaded, loads + 1
        log.info("model %s loaded in pid %d in %.2f s", model.name, os.getpid(), time.perf_counter() - started)
    return _engine


@worker_process_init.connect
def _load_at_process_start(**_: object) -> None:
    try:
        engine()
    except ChorusError as exc:
        # One clear line, then take the whole worker down: a pool that keeps
        # restarting a child that cannot load its model serves nobody.
        log.critical("%s: %s", type(exc).__name__, exc)
        os.kill(os.getppid(), signal.SIGTERM)
        os._exit(1)
