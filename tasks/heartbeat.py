"""Every worker, with each of Celery's worker heartbeats (every 2 s, in its main
process), records in Redis which Chorus queues it serves; ``Backlog.workers``
counts the live ones, so a job's deadline can share the work queued ahead of
it among the workers that will do it."""

from __future__ import annotations

import logging
from functools import lru_cache

import redis
from celery.signals import heartbeat_sent, worker_ready

from chorus.configs import get_settings
from chorus.tasks.app import PRIORITY_STEPS
from chorus.tasks.names import QUEUE_PREFIX
from chorus.tasks.state.backlog import Backlog

log = logging.getLogger(__name__)

_serving: dict[str, list[str]] = {}  # this worker's node name -> the Chorus queues it serves


@lru_cache
def _backlog() -> Backlog:
    # Its own client, with short timeouts: a heartbeat runs in the worker's
    # event loop, which must not hang on a Redis that does not answer.
    client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=1, socket_connect_timeout=1)
    return Backlog(client, PRIORITY_STEPS)


@worker_ready.connect
def _remember_queues(sender: object, **_: object) -> None:
    consumer = sender  # worker_ready is sent by the worker's consumer
    queues = [q.name for q in consumer.task_consumer.queues if q.name.startswith(QUEUE_PREFIX)]  # type: ignore[attr-defined]
    _serving[consumer.hostname] = queues  # type: ignore[attr-defined]
    _beat()


@heartbeat_sent.connect
def _beat(**_: object) -> None:
    try:
        for node, queues in _serving.items():
            _backlog().beat(node, queues)
    except redis.RedisError as exc:  # the next heartbeat tries again
        log.debug("heartbeat not recorded: %s", exc)
