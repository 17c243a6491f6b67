"""Batches: several books submitted in one request, polled together.

A batch is only a name for its jobs: each book is a job of its own, with its
own plan, state and artefacts; the batch records which jobs, in the order of
the request, and who owns them. It lives as long as its jobs' records do.

    chorus:batch:<id>    hash: owner, created_at, jobs (JSON: [{"id", "filename"}, ...])
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import redis
from redis.asyncio import Redis as AsyncRedis

from chorus.tasks.errors import BatchNotFound
from chorus.tasks.state.jobs import utc_now


@dataclass(frozen=True)
class BatchEntry:
    id: str  # the job's id
    filename: str


@dataclass(frozen=True)
class Batch:
    id: str
    owner: str
    created_at: str
    jobs: tuple[BatchEntry, ...]


class BatchStore:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s

    @staticmethod
    def _key(batch_id: str) -> str:
        return f"chorus:batch:{batch_id}"

    def create(self, owner: str, entries: list[BatchEntry]) -> Batch:
        batch = Batch(uuid.uuid4().hex, owner, utc_now(), tuple(entries))
        record = {"owner": owner, "created_at": batch.created_at,
                  "jobs": json.dumps([{"id": e.id, "filename": e.filename} for e in entries], ensure_ascii=False)}
        with self.redis.pipeline() as pipe:
            pipe.hset(self._key(batch.id), mapping=record)
            pipe.expire(self._key(batch.id), self.ttl_s)
            pipe.execute()
        return batch

    async def get_async(self, client: AsyncRedis, batch_id: str, owner: str) -> Batch:
        """The owner's batch; anyone else's is as good as missing."""
        raw = await client.hgetall(self._key(batch_id))
        if not raw or raw[b"owner"].decode() != owner:
            raise BatchNotFound(f"no batch with id {batch_id!r}")
        entries = tuple(BatchEntry(**entry) for entry in json.loads(raw[b"jobs"]))
        return Batch(batch_id, owner, raw[b"created_at"].decode(), entries)
