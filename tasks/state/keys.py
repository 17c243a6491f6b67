"""API keys: stored hashed in Redis, each with its own limits.

A key is shown once, when it is created; Redis keeps only its SHA-256, so a
copy of Redis does not give anyone access. A key's id (a prefix of the hash)
marks what it owns: jobs, registered voices and its namespace of the segment
cache. A revoked key stays listed, marked, and is refused from its next
request on: every request looks its key up in Redis, nothing caches it.
Revoking a key (``chorus keys revoke``) also cancels its unfinished jobs
(``tasks/cancellation.py``).

Each key also has a webhook secret, which signs the webhooks of its jobs
(HMAC-SHA256, ``tasks/webhooks.py``). A signature needs the secret itself, so
it is stored as it is, apart from the key records (``chorus:keys:webhook-secrets``,
key id -> secret), so that authenticating a request never loads it. It is shown
when made (``chorus keys create``, ``chorus keys rotate-secret``,
``POST /v1/webhook-secret``) and never listed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass, replace

import redis
from redis.asyncio import Redis as AsyncRedis

from chorus.tasks.errors import KeyRevoked
from chorus.tasks.state.jobs import utc_now

KEY_PREFIX = "chorus_"
SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    max_text_chars: int
    max_segments: int
    max_concurrent_jobs: int
    created_at: str = ""
    revoked_at: str = ""  # set once the key is revoked


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_webhook_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    KEY = "chorus:keys"  # hash: sha256(key) -> JSON record
    WEBHOOK_SECRETS = "chorus:keys:webhook-secrets"  # hash: key id -> webhook secret

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def create(self, name: str, max_text_chars: int, max_segments: int, max_concurrent_jobs: int) -> tuple[str, ApiKey]:
        """A new key (returned once, never stored) and its record; it gets a
        webhook secret too (``webhook_secret`` reads it)."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = self.register(key, name, max_text_chars, max_segments, max_concurrent_jobs)
        self.rotate_webhook_secret(record.id)
        return key, record

    def register(self, key: str, name: str, max_text_chars: int, max_segments: int, max_concurrent_jobs: int) -> ApiKey:
        """Record a key (again: the local stack registers its own at each start);
        a revoked key stays revoked."""
        digest = _digest(key)
        known = self.redis.hget(self.KEY, digest)
        revoked_at = json.loads(known).get("revoked_at", "") if known else ""
        record = ApiKey(digest[:16], name, max_text_chars, max_segments, max_concurrent_jobs, utc_now(), revoked_at)
        self.redis.hset(self.KEY, digest, json.dumps(asdict(record)))
        return record

    def lookup(self, key: str) -> ApiKey | None:
        """The key's record; None for an unknown key; KeyRevoked for a revoked one."""
        return self._usable(self.redis.hget(self.KEY, _digest(key)))

    async def lookup_async(self, client: AsyncRedis, key: str) -> ApiKey | None:
        """``lookup`` on an asyncio client: the API authenticates every request this way."""
        return self._usable(await client.hget(self.KEY, _digest(key)))

    @staticmethod
    def _usable(raw: bytes | None) -> ApiKey | None:
        if not raw:
            return None
        record = ApiKey(**json.loads(raw))
        if record.revoked_at:
            raise KeyRevoked(f"API key {record.id} was revoked at {record.revoked_at}")
        return record

    def revoke(self, key_id: str) -> ApiKey | None:
        """Revoke the key with this id (as ``chorus keys list`` shows it); None
        when there is none. Revoking twice keeps the first time."""
        if len(key_id) != 16 or not all(c in "0123456789abcdef" for c in key_id):
            return None
        for digest, raw in self.redis.hscan_iter(self.KEY, match=f"{key_id}*"):
            record = ApiKey(**json.loads(raw))
            if record.revoked_at:
                return record
            revoked = replace(record, revoked_at=utc_now())
            self.redis.hset(self.KEY, digest, json.dumps(asdict(revoked)))
            return revoked
        return None

    def webhook_secret(self, key_id: str) -> str | None:
        """The key's webhook secret; None when it has none yet."""
        raw = self.redis.hget(self.WEBHOOK_SECRETS, key_id)
        return raw.decode() if raw else None

    def ensure_webhook_secret(self, key_id: str) -> str:
        """The key's webhook secret, made if it has none (the local stack's own key, at each start)."""
        self.redis.hsetnx(self.WEBHOOK_SECRETS, key_id, new_webhook_secret())
        return self.redis.hget(self.WEBHOOK_SECRETS, key_id).decode()

    def rotate_webhook_secret(self, key_id: str) -> str:
        """A new webhook secret for the key, in force from the next delivery
        attempt on (pending deliveries too): the old one signs nothing more."""
        secret = new_webhook_secret()
        self.redis.hset(self.WEBHOOK_SECRETS, key_id, secret)
        return secret

    def find(self, key_id: str) -> ApiKey | None:
        """The record of the key with this id (as ``chorus keys list`` shows it), revoked or not."""
        if len(key_id) != 16 or not all(c in "0123456789abcdef" for c in key_id):
            return None
        for _, raw in self.redis.hscan_iter(self.KEY, match=f"{key_id}*"):
            return ApiKey(**json.loads(raw))
        return None

    def all(self) -> list[ApiKey]:
        return sorted((ApiKey(**json.loads(v)) for v in self.redis.hvals(self.KEY)), key=lambda k: k.created_at)
