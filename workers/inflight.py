"""Several segments in flight in one worker process that holds one model.

Celery's prefork pool runs one task at a time per child process, and each
child loads its own copy of the model: on a GPU, N children are N models. This
pool is Celery's thread pool (N tasks at once in the worker's own process)
plus what the prefork path gives a model worker: the model is loaded before
the first task is taken (``workers.model.engine()``, here in ``on_start``,
since the thread pool never sends ``worker_process_init``), and a worker whose
model cannot load stops with exit status 1 instead of starting empty.

No fork follows the load, so CUDA is safe in this process. Whether N
concurrent calls gain anything is the engine's business (workers/engines/base.py):
CosyVoice2 serves calls from several threads (upstream's gRPC server does the
same; with ``load_vllm`` its LLM stage batches across them). ``chorus worker
--inflight N`` selects this pool (``--pool custom`` with
``CELERY_CUSTOM_WORKER_POOL`` naming this class).
"""

from __future__ import annotations

import logging
import os

from celery.concurrency.thread import TaskPool as ThreadPool

log = logging.getLogger(__name__)

POOL_PATH = "chorus.workers.inflight:SharedModelPool"


class SharedModelPool(ThreadPool):
    """Celery's thread pool, with the model loaded once before the first task."""

    def on_start(self) -> None:
        from chorus.workers import model

        try:
            engine = model.engine()
        except Exception as exc:  # whatever the engine raised, the worker cannot serve
            log.critical("%s: %s", type(exc).__name__, exc)
            # One process, no pool children: leave at once, as the prefork path does.
            os._exit(1)
        log.info("%s loaded once in pid %d for %d segments in flight", engine.model.name, os.getpid(), self.limit)
        super().on_start()
