"""The shared clients a process needs, built once per process on first use."""

from __future__ import annotations

from functools import lru_cache

import redis
from redis.asyncio import BlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis

from chorus.configs import Registry, get_settings, load_registry
from chorus.tasks.app import PRIORITY_STEPS
from chorus.tasks.state.backlog import Backlog
from chorus.tasks.state.batches import BatchStore
from chorus.tasks.state.cache import SegmentCache
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


@lru_cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().redis_url)


ASYNC_REDIS_CONNECTIONS = 64  # requests beyond this many at once wait for a connection, not fail


@lru_cache
def async_redis() -> AsyncRedis:
    """An asyncio client, for the API's hot read paths (authentication, status)."""
    pool = BlockingConnectionPool.from_url(get_settings().redis_url, max_connections=ASYNC_REDIS_CONNECTIONS, timeout=30)
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
