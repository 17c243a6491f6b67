"""API keys: stored hashed in Redis, each with its own limits.

A key is shown once, when it is created; Redis keeps only its SHA-256, so a
copy of Redis does not give anyone access. A key's id (a prefix of the hash)
marks what it owns: jobs and registered voices.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

import redis

from tasks.state.jobs import utc_now

KEY_PREFIX = "chorus_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    max_text_chars: int
    max_segments: int
    max_concurrent_jobs: int
    created_at: str = ""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    KEY = "chorus:keys"  # hash: sha256(key) -> JSON record

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def create(self, name: str, max_text_chars: int, max_segments: int, max_concurrent_jobs: int) -> tuple[str, ApiKey]:
        """A new key (returned once, never stored) and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        return key, self.register(key, name, max_text_chars, max_segments, max_concurrent_jobs)

    def register(self, key: str, name: str, max_text_chars: int, max_segments: int, max_concurrent_jobs: int) -> ApiKey:
        digest = _digest(key)
        record = ApiKey(digest[:16], name, max_text_chars, max_segments, max_concurrent_jobs, utc_now())
        self.redis.hset(self.KEY, digest, json.dumps(asdict(record)))
        return record

    def lookup(self, key: str) -> ApiKey | None:
        raw = self.redis.hget(self.KEY, _digest(key))
        return ApiKey(**json.loads(raw)) if raw else None

    def all(self) -> list[ApiKey]:
        return sorted((ApiKey(**json.loads(v)) for v in self.redis.hvals(self.KEY)), key=lambda k: k.created_at)
