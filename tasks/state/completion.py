"""A segment's completion: everything Redis learns when a segment is stored,
in one Lua step (one round trip, about a dozen commands).

The step records, in the stores' own keys:

- the cache index (``SegmentCache``): last use, size (counted into the total
  once per key: a redelivered segment rewrites, it does not add) and loudness;
- the job's done counts (``JobStore``): the segment in the done set, its
  chapter's count, and the chapters this completes, each reported once; only
  while the job's record exists, so no side key outlives its job;
- the worker's record (``Fleet``): one more segment;
- the model's figures (``Metrics``): the segment, its audio and synthesis
  seconds and its latency bucket, together.

Lifetimes are set when a key is made, not renewed on every segment: the job's
side keys with its chapter's first segment (and again when the job is
queued again, ``EDGES["resume"]``), the worker's record every
``FLEET_RENEW_EVERY`` segments; the sweeper deletes a forgotten job's side
keys in any case.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from chorus.tasks.state.cache import SegmentCache
from chorus.tasks.state.fleet import Fleet
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.metrics import Metrics, bucket_field

FLEET_RENEW_EVERY = 100  # segments between renewals of a worker record's lifetime

_COMPLETE = """
-- KEYS: cache used, cache sizes, cache levels, cache total, job, done, chapter-done, chapters sent,
--       worker record, model figures
-- ARGV: cache key, now, size, level ('' for none), ttl, index, chapter, chapter size,
--       latency bucket, synthesis seconds, audio seconds, worker renewal period
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local total
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then
  total = redis.call('INCRBY', KEYS[4], ARGV[3])
else
  total = tonumber(redis.call('GET', KEYS[4]) or '0')
end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end

local complete = 0
if redis.call('EXISTS', KEYS[5]) == 1 then
  local chapter = ARGV[7]
  local finished
  if redis.call('SADD', KEYS[6], ARGV[6]) == 1 then
    finished = redis.call('HINCRBY', KEYS[7], chapter, 1)
    if finished == 1 then
      redis.call('EXPIRE', KEYS[6], ARGV[5])
      redis.call('EXPIRE', KEYS[7], ARGV[5])
    end
  else
    finished = tonumber(redis.call('HGET', KEYS[7], chapter) or '0')
  end
  if finished >= tonumber(ARGV[8]) and redis.call('HSETNX', KEYS[8], chapter, 1) == 1 then
    redis.call('EXPIRE', KEYS[8], ARGV[5])
    complete = 1
  end
end

if redis.call('HINCRBY', KEYS[9], 'segments', 1) % tonumber(ARGV[12]) == 1 then
  redis.call('EXPIRE', KEYS[9], ARGV[5])
end
redis.call('HINCRBYFLOAT', KEYS[10], 'audio_seconds', ARGV[11])
redis.call('HINCRBYFLOAT', KEYS[10], 'synthesis_seconds', ARGV[10])
redis.call('HINCRBY', KEYS[10], ARGV[9], 1)
return {total, complete}
"""


@dataclass(frozen=True)
class SpokenSegment:
    """What a synthesis worker reports of one stored segment."""

    job_id: str
    index: int
    chapter: int
    chapter_size: int  # segments in its chapter
    cache_key: str
    size: int  # bytes of the cached object
    level: bytes | None  # its SegmentLevel, as bytes
    worker: str  # the worker's node name
    model: str
    synthesis_s: float  # every take
    audio_s: float


class Completion:
    def __init__(self, client: redis.Redis, cache: SegmentCache, ttl_s: int) -> None:
        self.redis = client
        self.cache = cache
        self.ttl_s = ttl_s
        self._complete = client.register_script(_COMPLETE)

    def record(self, segment: SpokenSegment, now: float | None = None) -> bool:
        """Record the segment everywhere; True when it completed its chapter
        (reported once per chapter). Evicts from the cache, in a second step,
        only when the cache is over its bound."""
        job, part = JobStore.JOB.format(segment.job_id), JobStore.JOB_PART.format
        total, complete = self._complete(
            keys=[SegmentCache.USED, SegmentCache.SIZES, SegmentCache.LEVELS, SegmentCache.TOTAL,
                  job, part(segment.job_id, "done"), part(segment.job_id, "chapter-done"),
                  part(segment.job_id, "chapters-sent"), Fleet.RECORD.format(segment.worker),
                  Metrics.FIGURES.format(segment.model)],
            args=[segment.cache_key, time.time() if now is None else now, segment.size, segment.level or b"",
                  self.ttl_s, segment.index, segment.chapter, segment.chapter_size, bucket_field(segment.synthesis_s),
                  repr(segment.synthesis_s), repr(segment.audio_s), FLEET_RENEW_EVERY],
        )
        if int(total) > self.cache.max_bytes:
            self.cache.evict()
        return bool(complete)
