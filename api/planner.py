"""Submissions are read, planned and enqueued in pools of processes, off the
event loop, in two lanes, fairly between API keys, each within a deadline
and a memory limit.

Reading a book and planning it is CPU work on untrusted input (up to 2 M
characters), and enqueueing it is blocking I/O (Redis, an S3 PUT, a Celery
publish). In threads of the API's process both would hold the interpreter
lock, and the event loop that answers status polls and health checks would
wait for it; in processes of their own they cannot slow it at all. The
processes are started once, with the text rules and the clients loaded, when
the API starts.

The rules that keep one upload from holding everyone up:

- **Two lanes.** Small work -- a JSON text of at most ``api_fast_lane_bytes``
  and every ``/v1/audio/speech`` request -- is planned by processes of its own
  (``api_fast_planners``); uploads and larger texts by the others
  (``api_planners``). A book being planned never delays a short text.
- **A share per key.** In each lane one API key holds at most
  ``api_planner_key_slots`` processes at once. Its further submissions wait
  in order for its own share, never for another key's; more than
  ``api_planner_key_queue`` waiting are refused (``TooManyJobs``: 429 with
  Retry-After). Waiting keys take free processes first come, first served,
  and a key is never more than its share in that line, so a key that sends
  many books waits behind others, not they behind it.
- **A deadline that grows with the body.** ``api_planner_deadline_s`` plus
  ``api_planner_deadline_per_mib_s`` per MiB: a planner past it is killed and
  replaced (pebble does both), and the submission refused with a 413 that
  names the limit.
- **A memory limit.** Each process's address space is capped
  (``RLIMIT_AS``, ``api_planner_memory_bytes``): a book that needs more
  raises ``MemoryError`` there, answered 413 naming the limit; the process
  unwinds and goes on serving. A process that dies (a crash in a parser, the
  OOM killer) is replaced and the submission refused.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from chorus.configs import Settings, get_settings
from chorus.tasks.errors import InputError, TextTooLarge, TooManyJobs

log = logging.getLogger(__name__)

T = TypeVar("T")

# Planning yields the CPU to the API's own process (status polls, health
# checks) but not to synthesis, which runs nicer still (CHORUS_WORKER_NICE).
PLANNER_NICE = 5
MIB = 1024 * 1024
WARM_UP_S = 300.0  # the longest a new planner process may take to import and warm up


def _warm_up(memory_bytes: int) -> None:
    """Cap this process's memory, lower its priority, import the readers,
    build the spoken-form rules and the clients of Redis and S3 before the first book."""
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.nice(PLANNER_NICE)
    from chorus.tasks import clients
    from chorus.tasks.text import epub, markdown, pdf, plain  # noqa: F401
    from chorus.tasks.text.spoken import spoken_form

    spoken_form("1 warm-up", "en")
    spoken_form("1 预热", "zh")
    for make in (clients.registry, clients.voices, clients.jobs, clients.storage):
        make()


class Lane:
    """A pool of planner processes and the rules of who may use them."""

    def __init__(self, name: str, processes: int, settings: Settings) -> None:
        self.name = name
        self.processes = processes
        self.key_slots = settings.api_planner_key_slots
        self.key_queue = settings.api_planner_key_queue
        self.memory_bytes = settings.api_planner_memory_bytes
        self._pool: ProcessPool | None = None
        self._slots: asyncio.Semaphore | None = None
        self._key_gates: dict[str, asyncio.Semaphore] = {}
        self._inside: Counter[str] = Counter()  # a key's submissions in this lane, planning or waiting

    def start(self) -> None:
        if self._pool is None:
            # "spawn": a fresh interpreter, nothing inherited from the server's threads.
            self._pool = ProcessPool(max_workers=self.processes, initializer=_warm_up,
                                     initargs=(self.memory_bytes,), context=multiprocessing.get_context("spawn"))
            # Start them now, not on the first request, and answer once they are ready.
            warming = [self._pool.submit(int, None) for _ in range(self.processes)]
            for future in warming:
                future.result(timeout=WARM_UP_S)

    async def run(self, owner: str, deadline_s: float, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` in one of this lane's processes, within the key's
        share and ``deadline_s``; its exceptions come back as they were raised."""
        self.start()
        assert self._pool is not None
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.processes)
        if self._inside[owner] >= self.key_slots + self.key_queue:
            raise TooManyJobs(
                f"this key has {self._inside[owner]} submissions being planned or waiting to be; "
                f"try again when some are answered"
            )
        gate = self._key_gates.setdefault(owner, asyncio.Semaphore(self.key_slots))
        self._inside[owner] += 1
        try:
            async with gate, self._slots:
                future: Future[T] = self._pool.submit(function, deadline_s, *args)
                # A caller that goes away does not stop the work (it may be
                # enqueueing); its slot is held until the work ends.
                done = asyncio.wrap_future(future)
                try:
                    return await asyncio.shield(done)
                except asyncio.CancelledError:
                    await asyncio.wait([done])
                    raise
        except FutureTimeout:
            log.warning("a planner passed its deadline of %.0f s and was replaced", deadline_s)
            raise TextTooLarge(f"the book took longer than {deadline_s:.0f} s to read and plan, "
                               f"the limit for a body of its size") from None
        except MemoryError:
            raise TextTooLarge(f"the book needs more than {self.memory_bytes // MIB:,} MiB of memory "
                               "to read and plan; that is the limit") from None
        except ProcessExpired as exc:
            log.error("a planner process died (exit code %s); it was replaced", exc.exitcode)
            raise InputError(f"the book could not be read: its reader died (exit code {exc.exitcode}; "
                             f"each reader may use {self.memory_bytes // MIB:,} MiB)") from None
        finally:
            self._inside[owner] -= 1
            if not self._inside[owner]:
                del self._inside[owner]
                self._key_gates.pop(owner, None)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool.join(timeout=10)
            self._pool = None


class Planner:
    """The API's two lanes of planner processes (rules in the module's docstring)."""

    def __init__(self, processes: int, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.books = Lane("books", processes, self.settings)
        self.fast = Lane("fast", self.settings.api_fast_planners, self.settings)

    def start(self) -> None:
        self.books.start()
        self.fast.start()

    def deadline(self, size: int) -> float:
        """Seconds a body of ``size`` bytes may take to be planned."""
        return self.settings.api_planner_deadline_s + self.settings.api_planner_deadline_per_mib_s * size / MIB

    def is_small(self, size: int) -> bool:
        """Does a JSON text of ``size`` bytes take the fast lane?"""
        return size <= self.settings.api_fast_lane_bytes

    async def run(self, function: Callable[..., T], *args: Any, owner: str = "", size: int = 0,
                  small: bool = False) -> T:
        """``function(*args)`` in a planner process for ``owner`` (an API key
        id), on a body of ``size`` bytes; ``small``: in the fast lane."""
        lane = self.fast if small else self.books
        return await lane.run(owner, self.deadline(size), function, *args)

    def close(self) -> None:
        self.books.close()
        self.fast.close()
