"""Submissions are read, planned and enqueued in a small pool of processes,
off the event loop.

Reading a book and planning it is CPU work on untrusted input (up to 2 M
characters), and enqueueing it is blocking I/O (Redis, an S3 PUT, a Celery
publish). In threads of the API's process both would hold the interpreter
lock, and the event loop that answers status polls and health checks would
wait for it; in processes of their own they cannot slow it at all, and two
books are planned on two cores at once. The processes are started once, with
the text rules and the clients loaded, when the API starts.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from chorus.tasks.errors import UnsupportedMedia

log = logging.getLogger(__name__)

T = TypeVar("T")


# Planning yields the CPU to the API's own process (status polls, health
# checks) but not to synthesis, which runs nicer still (CHORUS_WORKER_NICE).
PLANNER_NICE = 5


def _warm_up() -> None:
    """Lower this process's priority, import the readers, build the
    spoken-form rules and the clients of Redis and S3 before the first book."""
    os.nice(PLANNER_NICE)
    from chorus.tasks import clients
    from chorus.tasks.text import epub, markdown, plain  # noqa: F401
    from chorus.tasks.text.spoken import spoken_form

    spoken_form("1 warm-up", "en")
    spoken_form("1 预热", "zh")
    for make in (clients.registry, clients.voices, clients.jobs, clients.storage):
        make()


class Planner:
    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        # "spawn": a fresh interpreter, nothing inherited from the server's threads.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=self.processes, mp_context=context, initializer=_warm_up)
        for _ in range(self.processes):  # start them now, not on the first request
            pool.submit(int)
        return pool

    def start(self) -> None:
        if self._pool is None:
            self._pool = self._start()

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in a planner process; its exceptions come back as they were raised."""
        self.start()
        assert self._pool is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)
        except BrokenProcessPool:
            # A planner process died (a crash in a parser, the OOM killer): start
            # a new pool for the next request and refuse this one clearly.
            log.error("a planner process died; starting new ones")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._start()
            raise UnsupportedMedia("the book could not be read: its reader crashed") from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
