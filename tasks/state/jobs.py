"""Job state in Redis: one hash per job, plus a set of finished segment indexes.

Celery results are not the source of truth for a job: the API reads these keys,
the tasks write them. Counting finished segments in a set (not a counter) keeps
progress right when Redis redelivers a segment that already ran.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from enum import StrEnum

import redis

from tasks.errors import JobNotFound, TooManyJobs


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ASSEMBLING = "assembling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


FINAL_STATES = [s.value for s in JobState if s.final]


@dataclass
class Job:
    id: str
    state: JobState
    voice: str
    format: str
    title: str = ""
    author: str = ""
    owner: str = ""  # id of the API key that submitted it
    segments_total: int = 0
    segments_done: int = 0
    cache_hits: int = 0
    audio_seconds: float = 0.0
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    result_key: str = ""
    manifest_key: str = ""
    # JSON: chapter titles in order (set by split) and {artefact name: S3 key} (set when done)
    chapter_titles: str = "[]"
    artefacts: str = "{}"
    deadline_at: float = 0.0  # unix time by which the watchdog expects it finished
    redrives: int = 0  # times it was resumed (by a client or the watchdog)

    @property
    def progress(self) -> float:
        if self.state == JobState.DONE:
            return 1.0
        if not self.segments_total:
            return 0.0
        return round(self.segments_done / self.segments_total, 4)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# Create a job unless its owner is at the limit of unfinished jobs (-1: no limit).
_CREATE = """
if tonumber(ARGV[1]) >= 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"""

# Set fields only while the job is not in a final state, atomically: a late
# failure must not overwrite "done", nor a late "done" a cancellation.
_SET_UNLESS_FINAL = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
for _, final in ipairs(cjson.decode(ARGV[1])) do
  if state == final then return 0 end
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


class JobStore:
    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._set_unless_final = client.register_script(_SET_UNLESS_FINAL)
        self._create = client.register_script(_CREATE)

    @staticmethod
    def _key(job_id: str, part: str = "") -> str:
        """The job's hash, or one of its side keys ("done", "attempts", "releases")."""
        return f"chorus:job:{job_id}:{part}" if part else f"chorus:job:{job_id}"

    def create(
        self, voice: str, audio_format: str, title: str, author: str = "", owner: str = "",
        segments_total: int = 0, chapter_titles: list[str] | None = None, max_active: int | None = None,
    ) -> Job:
        """Record a new queued job. With ``max_active``, atomically refuse it
        (``TooManyJobs``) when the owner already has that many jobs unfinished:
        the check and the insert are one Redis script, so concurrent requests,
        in one API process or several, never pass the limit together."""
        job = Job(
            id=uuid.uuid4().hex,
            state=JobState.QUEUED,
            voice=voice,
            format=audio_format,
            title=title,
            author=author,
            owner=owner,
            segments_total=segments_total,
            chapter_titles=json.dumps(chapter_titles or [], ensure_ascii=False),
            created_at=utc_now(),
        )
        mapping = [str(part) for field, value in asdict(job).items() for part in (field, value)]
        limit = -1 if max_active is None else max_active
        created = self._create(
            keys=[self._key(job.id), self._active_key(owner), self.ACTIVE], args=[limit, self.ttl_s, job.id, *mapping]
        )
        if not created:
            raise TooManyJobs(f"this key already has {max_active} jobs running; wait for one to finish")
        return job

    ACTIVE = "chorus:jobs:active"  # every job not in a final state, for the watchdog

    def active_ids(self) -> list[str]:
        return sorted(member.decode() for member in self.redis.smembers(self.ACTIVE))

    @staticmethod
    def _active_key(owner: str) -> str:
        return f"chorus:owner:{owner}:active"

    def active_jobs(self, owner: str) -> int:
        """How many of the owner's jobs are not finished (for the concurrency limit)."""
        return int(self.redis.scard(self._active_key(owner)))

    def get(self, job_id: str) -> Job:
        with self.redis.pipeline() as pipe:
            pipe.hgetall(self._key(job_id))
            pipe.scard(self._key(job_id, "done"))
            raw, done = pipe.execute()
        if not raw:
            raise JobNotFound(f"no job with id {job_id!r}")
        values = {k.decode(): v.decode() for k, v in raw.items()}
        known = {f.name for f in fields(Job)}
        job = Job(**{k: v for k, v in values.items() if k in known})
        job.state = JobState(job.state)
        job.segments_total = int(job.segments_total)
        job.cache_hits = int(job.cache_hits)
        job.deadline_at = float(job.deadline_at)
        job.redrives = int(job.redrives)
        job.audio_seconds = float(job.audio_seconds)
        job.segments_done = int(done)
        return job

    def _update(self, job_id: str, **values: object) -> bool:
        args: list[str] = []
        for name, value in values.items():
            args += [name, str(value)]
        changed = self._set_unless_final(keys=[self._key(job_id)], args=[json.dumps(FINAL_STATES), *args]) == 1
        if changed and str(values.get("state")) in FINAL_STATES:
            owner = self.redis.hget(self._key(job_id), "owner")
            self.redis.srem(self._active_key((owner or b"").decode()), job_id)
            self.redis.srem(self.ACTIVE, job_id)
        return changed

    def cancel(self, job_id: str) -> bool:
        return self._update(job_id, state=JobState.CANCELLED, error="cancelled", finished_at=utc_now())

    def resume(self, job_id: str) -> None:
        """Back to queued for another split: attempts start again, chapters not
        yet delivered may be announced again; finished segments stay done."""
        key = self._key(job_id)
        owner = (self.redis.hget(key, "owner") or b"").decode()
        stale = list(self.redis.scan_iter(self._key(job_id, "chapter-sent:*")))
        with self.redis.pipeline() as pipe:
            pipe.hset(key, mapping={"state": JobState.QUEUED.value, "error": "", "finished_at": ""})
            pipe.hincrby(key, "redrives", 1)
            pipe.delete(self._key(job_id, "attempts"), *stale)
            pipe.sadd(self._active_key(owner), job_id)
            pipe.sadd(self.ACTIVE, job_id)
            pipe.execute()

    def start(self, job_id: str, cache_hits: int, deadline_at: float) -> bool:
        return self._update(
            job_id, state=JobState.RUNNING, deadline_at=deadline_at, cache_hits=cache_hits, started_at=utc_now()
        )

    def assembling(self, job_id: str) -> bool:
        return self._update(job_id, state=JobState.ASSEMBLING)

    def finish(self, job_id: str, result_key: str, manifest_key: str, audio_seconds: float, artefacts: dict[str, str]) -> bool:
        return self._update(
            job_id,
            state=JobState.DONE,
            result_key=result_key,
            manifest_key=manifest_key,
            artefacts=json.dumps(artefacts),
            audio_seconds=round(audio_seconds, 3),
            finished_at=utc_now(),
        )

    def fail(self, job_id: str, reason: str) -> bool:
        """Mark the job failed; the first reason wins, a final state is kept."""
        return self._update(job_id, state=JobState.FAILED, error=reason, finished_at=utc_now())

    def segments_done(self, job_id: str, done: dict[int, list[int]], chapter_sizes: dict[int, int]) -> list[int]:
        """Record finished segments ({chapter: [index, ...]}); return the chapters
        this completed. Sets, not counters, so a redelivered segment counts once,
        and a chapter is reported complete exactly once (SETNX)."""
        key, complete = self._key(job_id, "done"), []
        for chapter, indexes in done.items():
            chapter_key = self._key(job_id, f"done:{chapter}")
            with self.redis.pipeline() as pipe:
                pipe.sadd(key, *indexes)
                pipe.sadd(chapter_key, *indexes)
                pipe.expire(key, self.ttl_s)
                pipe.expire(chapter_key, self.ttl_s)
                pipe.scard(chapter_key)
                finished = pipe.execute()[-1]
            if finished >= chapter_sizes[chapter] and self.redis.set(
                self._key(job_id, f"chapter-sent:{chapter}"), 1, nx=True, ex=self.ttl_s
            ):
                complete.append(chapter)
        return complete

    def chapter_ready(self, job_id: str, chapter: int, key: str, seconds: float) -> None:
        ready = self._key(job_id, "chapters")
        with self.redis.pipeline() as pipe:
            pipe.hset(ready, str(chapter), json.dumps({"key": key, "seconds": round(seconds, 3)}))
            pipe.expire(ready, self.ttl_s)
            pipe.execute()

    def chapters_ready(self, job_id: str) -> dict[int, dict]:
        raw = self.redis.hgetall(self._key(job_id, "chapters"))
        return {int(k): json.loads(v) for k, v in raw.items()}

    def count_attempt(self, job_id: str, index: int) -> int:
        """Count one more start of a segment. Redelivery after a lost worker does
        not pass through Celery's retry counter, so attempts are counted here."""
        key = self._key(job_id, "attempts")
        with self.redis.pipeline() as pipe:
            pipe.hincrby(key, str(index), 1)
            pipe.expire(key, self.ttl_s)
            attempts, _ = pipe.execute()
        return int(attempts)

    def record_release(self, job_id: str, worker: str) -> None:
        key = self._key(job_id, "releases")
        with self.redis.pipeline() as pipe:
            pipe.hincrby(key, worker, 1)
            pipe.expire(key, self.ttl_s)
            pipe.execute()

    def releases(self, job_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self._key(job_id, "releases"))
        return {k.decode(): int(v) for k, v in raw.items()}
