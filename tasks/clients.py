"""The shared clients a process needs, built once per process on first use.

A service that is away for a moment delays work, it does not fail it: every
Redis client reconnects with exponential backoff on connection errors and
timeouts (redis-py's ``Retry``), for up to ``redis_retry_s`` in all, and a
task's retry waits as long for the broker to take it (``publish_retry_policy``).
The API's own async client gives up after about a second, so that a request
gets its 503 at once rather than a long wait.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from chorus.configs import Registry, get_settings, load_registry
from chorus.tasks.app import PRIORITY_STEPS
from chorus.tasks.state.backlog import Backlog
from chorus.tasks.state.batches import BatchStore
from chorus.tasks.state.cache import SegmentCache
from chorus.tasks.state.completion import Completion
from chorus.tasks.state.fleet import Fleet
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.keys import KeyStore
from chorus.tasks.state.lexicon import LexiconStore
from chorus.tasks.state.metrics import Metrics
from chorus.tasks.state.outbox import Outbox
from chorus.tasks.state.storage import Storage
from chorus.tasks.state.voices import VoiceBook


@lru_cache
def registry() -> Registry:
    return load_registry(get_settings().registry_file)


@lru_cache
def storage() -> Storage:
    return Storage(get_settings())


# Waits between reconnection attempts: 0.1 s, doubling, at most 2 s each.
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 2.0
# The API's async client: about a second of retries, then the request answers 503.
API_REDIS_RETRIES = 3
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def reconnect_attempts(budget_s: float) -> int:
    """How many retries of a Redis command fit in ``budget_s`` of backoff
    (0.1, 0.2, 0.4, 0.8, 1.6, then 2 s each)."""
    attempts, waited, wait = 0, 0.0, RECONNECT_FIRST_S
    while waited + wait <= budget_s:
        attempts, waited, wait = attempts + 1, waited + wait, min(RECONNECT_MAX_S, wait * 2)
    return attempts


def redis_retry(budget_s: float) -> Retry:
    return Retry(ExponentialBackoff(cap=RECONNECT_MAX_S, base=RECONNECT_FIRST_S), reconnect_attempts(budget_s),
                 supported_errors=REDIS_ERRORS)


def publish_retry_policy(budget_s: float | None = None) -> dict[str, Any]:
    """kombu's retry policy for a message sent while the broker may be away
    (a task's retry; see ``tasks/base.py``): tries again every 0.5 s
    more, up to 2 s apart, for ``budget_s`` (default ``redis_retry_s``) in all.
    Celery's default gives up after about a second."""
    budget = get_settings().redis_retry_s if budget_s is None else budget_s
    # waits 0, 0.5, 1, 1.5, then 2 s each: 3 s for the first four
    retries = 4 + max(0, math.ceil((budget - 3) / RECONNECT_MAX_S))
    return {"max_retries": retries, "interval_start": 0, "interval_step": 0.5, "interval_max": RECONNECT_MAX_S}


@lru_cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url, retry=redis_retry(get_settings().redis_retry_s))


ASYNC_REDIS_CONNECTIONS = 64  # requests beyond this many at once wait for a connection, not fail


@lru_cache
def async_redis() -> AsyncRedis:
    """An asyncio client, for the API's hot read paths (authentication, status)."""
    retry = AsyncRetry(ExponentialBackoff(cap=RECONNECT_MAX_S, base=RECONNECT_FIRST_S), API_REDIS_RETRIES,
                       supported_errors=REDIS_ERRORS)
    pool = BlockingConnectionPool.from_url(get_settings().redis_url, max_connections=ASYNC_REDIS_CONNECTIONS, timeout=30,
                                           retry=retry)
    return AsyncRedis(connection_pool=pool)


@lru_cache
def jobs() -> JobStore:
    settings = get_settings()
    return JobStore(redis_client(), ttl_s=settings.job_ttl_s, queued_deadline_s=settings.job_deadline_base_s)


@lru_cache
def outbox() -> Outbox:
    return Outbox(redis_client())


@lru_cache
def batches() -> BatchStore:
    return BatchStore(redis_client(), ttl_s=get_settings().job_ttl_s)


@lru_cache
def fleet() -> Fleet:
    return Fleet(redis_client(), ttl_s=get_settings().job_ttl_s)


@lru_cache
def voices() -> VoiceBook:
    return VoiceBook(registry(), redis_client())


@lru_cache
def cache() -> SegmentCache:
    settings = get_settings()
    return SegmentCache(redis_client(), storage(), settings.cache_max_bytes, settings.cache_min_age_s)


@lru_cache
def completion() -> Completion:
    return Completion(redis_client(), cache(), ttl_s=get_settings().job_ttl_s)


@lru_cache
def keys() -> KeyStore:
    return KeyStore(redis_client())


@lru_cache
def lexicons() -> LexiconStore:
    return LexiconStore(redis_client())


@lru_cache
def backlog() -> Backlog:
    return Backlog(redis_client(), PRIORITY_STEPS)


@lru_cache
def metrics() -> Metrics:
    return Metrics(redis_client(), backlog())
