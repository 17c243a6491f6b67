"""The shared clients a process needs, built once per process on first use."""

from __future__ import annotations

from functools import lru_cache

import redis

from configs import Registry, get_settings, load_registry
from tasks.jobs import JobStore
from tasks.storage import Storage


@lru_cache
def registry() -> Registry:
    return load_registry(get_settings().registry_file)


@lru_cache
def storage() -> Storage:
    return Storage(get_settings())


@lru_cache
def jobs() -> JobStore:
    settings = get_settings()
    return JobStore(redis.Redis.from_url(settings.redis_url), ttl_s=settings.job_ttl_s)
