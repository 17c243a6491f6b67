"""The segment cache: segment audio stored under a key made of its content.

The key hashes what decides the audio — the spoken text, the voice, the model
and its version, and the synthesis and trimming settings — so resubmitting a
book synthesises nothing, and editing one paragraph re-synthesises only the
segments whose text changed. Because the key is a pure function of content, a
redelivered segment rewrites the same object.

Objects live in S3 under ``cache/``; Redis keeps an index (last use per key,
sizes, and each segment's loudness level, measured once when it was
synthesised, so assembling a book never reads its audio twice) that bounds
the cache: beyond ``max_bytes`` the least recently used entries go, but never
one used within ``min_age_s``, so a job in flight never loses a segment it
counted as a hit. A synthesis worker adds a segment to the index within the
segment's completion (``tasks/state/completion.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis

from chorus.tasks.state.storage import Storage

PREFIX = "cache/"


def object_key(key: str) -> str:
    return f"{PREFIX}{key[:2]}/{key}.wav"


class SegmentCache:
    USED = "chorus:cache:used"  # sorted set: key -> last use (unix time)
    SIZES = "chorus:cache:sizes"  # hash: key -> bytes
    TOTAL = "chorus:cache:bytes"  # integer: sum of sizes
    LEVELS = "chorus:cache:levels"  # hash: key -> the segment's SegmentLevel, as bytes (~40 bytes a second)
    LEVELS_PER_CALL = 1000
    HITS_PER_CALL = 10_000

    def __init__(self, client: redis.Redis, storage: Storage, max_bytes: int, min_age_s: float) -> None:
        self.redis = client
        self.storage = storage
        self.max_bytes = max_bytes
        self.min_age_s = min_age_s

    def hits(self, keys: Iterable[str]) -> set[str]:
        """The keys already cached; marks them used now. One ZMSCORE per
        ``HITS_PER_CALL`` keys (Redis 6.2), not one command per key."""
        keys = list(dict.fromkeys(keys))
        with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, len(keys), self.HITS_PER_CALL):
                pipe.zmscore(self.USED, keys[start : start + self.HITS_PER_CALL])
            scores = [score for batch in pipe.execute() for score in batch]
        found = {key for key, score in zip(keys, scores) if score is not None}
        if found:
            self.redis.zadd(self.USED, {key: time.time() for key in found}, xx=True)
        return found

    def levels(self, keys: list[str]) -> dict[str, bytes]:
        """The stored loudness levels of these keys (those that have one)."""
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), self.LEVELS_PER_CALL):
            batch = keys[start : start + self.LEVELS_PER_CALL]
            found.update((k, v) for k, v in zip(batch, self.redis.hmget(self.LEVELS, batch)) if v is not None)
        return found

    def stats(self) -> dict[str, int]:
        return {"entries": int(self.redis.zcard(self.USED)), "bytes": int(self.redis.get(self.TOTAL) or 0)}

    def evict(self) -> int:
        """Drop least recently used entries until under max_bytes (recent ones stay)."""
        removed = 0
        cutoff = time.time() - self.min_age_s
        while int(self.redis.get(self.TOTAL) or 0) > self.max_bytes:
            oldest = self.redis.zrangebyscore(self.USED, "-inf", cutoff, start=0, num=100)
            if not oldest:
                break
            removed += self._remove([k.decode() for k in oldest])
        return removed

    def clear(self, older_than_s: float = 0.0) -> int:
        """Remove every entry not used within ``older_than_s`` seconds (all by default)."""
        cutoff = time.time() - older_than_s
        removed = 0
        while batch := self.redis.zrangebyscore(self.USED, "-inf", cutoff, start=0, num=500):
            removed += self._remove([k.decode() for k in batch])
        return removed

    def _remove(self, keys: list[str]) -> int:
        self.storage.delete_keys([object_key(k) for k in keys])
        sizes = self.redis.hmget(self.SIZES, keys)
        with self.redis.pipeline() as pipe:
            pipe.zrem(self.USED, *keys)
            pipe.hdel(self.SIZES, *keys)
            pipe.hdel(self.LEVELS, *keys)
            pipe.decrby(self.TOTAL, sum(int(s or 0) for s in sizes))
            pipe.execute()
        return len(keys)
