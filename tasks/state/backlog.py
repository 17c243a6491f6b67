"""The work queued ahead of a job, and the workers alive to take it.

A job's deadline (``tasks/pipeline.py``, ``tasks/watchdog.py``) allows for the
messages waiting on its queue, shared among the workers that serve that
queue, so a job merely waiting behind others is neither re-driven (which would
queue its work twice) nor failed.

Queue lengths are read from the broker's own lists: on Redis, kombu keeps one
list per priority level of a queue (``<queue>`` for the first level,
``<queue>\\x06\\x16<level>`` for the others). Live workers are counted from
heartbeats: every worker records, each time Celery sends its worker heartbeat
(``tasks/heartbeat.py``), the queues it serves, and a worker silent for
``STALE_S`` is no longer counted.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis
from kombu.transport.redis import Channel

STALE_S = 10.0  # Celery sends a worker heartbeat every 2 s


class Backlog:
    def __init__(self, client: redis.Redis, priority_steps: Sequence[int]) -> None:
        self.redis = client
        self.priority_steps = list(priority_steps)

    @staticmethod
    def workers_key(queue: str) -> str:
        return f"chorus:queue:{queue}:workers"

    def lists(self, queue: str) -> list[str]:
        """The broker's lists that hold a queue's waiting messages, one per priority level."""
        return [queue if level == 0 else f"{queue}{Channel.sep}{level}" for level in self.priority_steps]

    def queued(self, queue: str) -> int:
        """Messages waiting on the queue, every priority level together
        (not those a worker has reserved or is running)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for name in self.lists(queue):
                pipe.llen(name)
            return sum(pipe.execute())

    def beat(self, node: str, queues: Sequence[str], now: float | None = None) -> None:
        """One heartbeat of a worker serving ``queues``."""
        now = time.time() if now is None else now
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                key = self.workers_key(queue)
                pipe.zadd(key, {node: now})
                pipe.zremrangebyscore(key, "-inf", now - 6 * STALE_S)  # long gone
                pipe.expire(key, int(6 * STALE_S))
            pipe.execute()

    def workers(self, queue: str, now: float | None = None) -> int:
        """Workers that served the queue within the last ``STALE_S`` seconds."""
        now = time.time() if now is None else now
        return int(self.redis.zcount(self.workers_key(queue), now - STALE_S, "+inf"))

    def wait_s(self, queue: str, per_message_s: float) -> float:
        """How long the messages waiting on the queue may take, shared among its
        live workers. 0 when no worker serves it: then waiting helps nobody."""
        workers = self.workers(queue)
        return self.queued(queue) * per_message_s / workers if workers else 0.0
