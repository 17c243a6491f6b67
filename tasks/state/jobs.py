"""Job state in Redis: one hash per job, a few side keys, and the indexes that
the watchdog, the sweeper and the per-key limits read.

Every change of a job's state is one edge of ``EDGES`` (below, the only place
that says which state may follow which), applied by one Lua script: it checks
the job's current state against the edge's sources and, in the same step,
writes the new state, the edge's fields and the sets of unfinished jobs. No
state is read in Python and then written, so two processes racing (a cancel
and a failure, a resume and a late finish) never both win.

Keys of job <id>, submitted with API key <owner>:

    chorus:job:<id>                 hash: the Job's fields, and chapter:<n> for each ready chapter file
    chorus:job:<id>:done            set: finished segment indexes (a redelivered segment counts once)
    chorus:job:<id>:chapter-done    hash: chapter -> finished segments in it
    chorus:job:<id>:chapters-sent   hash: chapters whose render was sent (each once)
    chorus:job:<id>:attempts        hash: unit of work ("segment 3", "assembly") -> starts
    chorus:job:<id>:releases        hash: worker -> memory releases
    chorus:jobs:active              set: every unfinished job (the watchdog walks it)
    chorus:owner:<owner>:active     set: the owner's unfinished jobs (its concurrency limit)
    chorus:owner:<owner>:jobs       sorted set: the owner's jobs by creation time (GET /v1/jobs)
    chorus:jobs:owners              hash: job -> owner, kept until the job is forgotten
    chorus:jobs:chords              hash: job -> its latest chord's group id, kept until the job is forgotten
    chorus:jobs:expiry              sorted set: job -> when its record expires (the sweeper walks it)
    chorus:webhooks:due             sorted set: job -> when its webhook's next attempt is due (the outbox)
    chorus:jobs:finished            hash: final state -> endings so far, counted by the final transition
                                    (a resumed job that ends again counts again; read by /metrics)

The job's hash expires by itself (``ttl_s``); the indexes are what lets the
sweeper free the owner's slot and delete the objects of a job whose record is
gone. Chorus runs on one Redis (not Redis Cluster): scripts derive the owner's
set from the job's own record, so a transition is one round trip.

A job with a ``webhook_url`` has its webhook marked pending and put in
``chorus:webhooks:due`` by the same transition that moves it into a final
state, so a job never ends without its webhook being due, and never has it due
twice for one ending. Delivery then claims and records attempts through the
outbox (``tasks/state/outbox.py``), which writes only the webhook_* fields:
the job's state has one writer, this store.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import NamedTuple, get_type_hints

import redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline

from chorus.tasks.errors import JobNotFound, TooManyJobs


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    ASSEMBLING = "assembling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in FINAL


FINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
UNFINISHED = frozenset(JobState) - FINAL


@dataclass(frozen=True)
class Edge:
    """A way a job's state may change: from any of ``sources`` to ``target``."""

    sources: frozenset[JobState]
    target: JobState | None = None  # None: the state stays, only fields are written
    overdue_only: frozenset[JobState] = frozenset()  # sources allowed only once the deadline has passed
    requeue: bool = False  # attempts, unread chapter announcements and the record's lifetime start again
    opens_run: bool = False  # a run's work begins: its attempts (the split's, so far) get the record's lifetime

    def document(self) -> str:
        """The edge as the transition script reads it."""
        return json.dumps({
            "sources": {state.value: True for state in self.sources},
            "overdue_only": {state.value: True for state in self.overdue_only},
            "target": self.target.value if self.target else "",
            "final": bool(self.target and self.target.final),
            "requeue": self.requeue,
            "opens_run": self.opens_run,
        })


Q, R, A, D = JobState.QUEUED, JobState.RUNNING, JobState.ASSEMBLING, JobState.DONE

# Every way a job's state may change. Nothing else writes a job's state.
EDGES: dict[str, Edge] = {
    # The split, once per queueing: a redelivered split finds the job running
    # and launches no second chord.
    "start": Edge(frozenset({Q}), R, opens_run=True),
    # The chord body; again when a lost assembly is redelivered.
    "assemble": Edge(frozenset({R, A}), A),
    "finish": Edge(frozenset({A}), D),
    # First reason wins: a job already failed, done or cancelled stays so.
    "fail": Edge(UNFINISHED, JobState.FAILED),
    "cancel": Edge(UNFINISHED, JobState.CANCELLED),
    # A failed job, or an unfinished one past its deadline; never a done or
    # cancelled one.
    "resume": Edge(UNFINISHED | {JobState.FAILED}, Q, overdue_only=UNFINISHED, requeue=True),
    # Fields only. A later deadline: the job is waiting behind other work.
    "postpone": Edge(UNFINISHED),
    # Fields only. A chapter's file is ready (also after the whole book is).
    "chapter": Edge(frozenset({R, A, D})),
}

# The final states as a Lua table, for scripts that check a state.
FINAL_LUA = "{" + ", ".join(f"{state.value} = true" for state in sorted(FINAL)) + "}"
LIST_CHUNK = 100  # jobs read per round trip when listing
LIST_SCAN = 1000  # jobs one page of a listing looks at, at most
_READ_REPLIES = 3  # replies of JobStore._read per job
_SIDE_KEYS = ("done", "chapter-done", "chapters-sent", "attempts", "releases")
# Celery's Redis result backend keeps a chord's parts under this prefix and its
# group id, one key per suffix (.j results, .t, .s size, .d parts counted).
CHORD_KEY_PREFIX = "celery-taskset-meta-"
CHAPTER_FIELD = "chapter:"  # hash field of a ready chapter: chapter:<index> -> {"key", "seconds"}


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def split_key_template(template: str) -> tuple[str, str]:
    """The text of a key template before and after its one field: a script
    that reads the field's value (a job's owner) joins the key around it."""
    before, _, after = template.partition("{0}")
    return before, after


class Start(NamedTuple):
    """A task's start as ``JobStore.begin`` saw it."""

    state: JobState | None  # None: no such job
    starts: int  # starts of its unit so far, this one included; 0 when not counted
    stale: bool = False  # left from an earlier run of a job re-driven since


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
    cache_hits: int = 0
    suspect_segments: int = 0  # set when done: segments whose kept take still looked wrong (the manifest says why)
    audio_seconds: float = 0.0
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""
    error: str = ""
    result_key: str = ""
    manifest_key: str = ""
    # JSON: chapter titles and their segment counts in order (set at creation)
    # and {artefact name: S3 key} (set when done)
    chapter_titles: str = "[]"
    chapter_sizes: str = "[]"
    artefacts: str = "{}"
    deadline_at: float = 0.0  # unix time by which the watchdog expects the next step (split, or the end)
    redrives: int = 0  # times it was resumed (by a client or the watchdog)
    # Its webhook (tasks/state/outbox.py): where it goes, and the delivery
    # of the job's latest ending. state: '' (the job has not ended), pending, delivered, failed.
    webhook_url: str = ""
    webhook_state: str = ""
    webhook_delivery: str = ""  # <job id>.<run>: the same on every attempt for one ending
    webhook_attempts: int = 0
    webhook_code: int = 0  # HTTP status of the last attempt; 0: no answer
    webhook_error: str = ""  # why the last attempt failed
    webhook_attempted_at: str = ""
    webhook_next_at: float = 0.0  # unix time the next attempt is due, while pending
    webhook_delivered_at: str = ""
    # Not fields of the hash: counted from the done set, gathered from chapter:<n>
    # fields, and read from the chapter-done side key.
    segments_done: int = field(default=0, metadata={"stored": False})
    chapters: dict[int, dict] = field(default_factory=dict, metadata={"stored": False})
    chapters_done: dict[int, int] = field(default_factory=dict, metadata={"stored": False})

    @property
    def progress(self) -> float:
        if self.state == JobState.DONE:
            return 1.0
        if not self.segments_total:
            return 0.0
        return round(self.segments_done / self.segments_total, 4)

    @classmethod
    def stored_fields(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.metadata.get("stored", True)]

    def to_redis(self) -> dict[str, str]:
        return {name: str(getattr(self, name)) for name in self.stored_fields()}

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes], segments_done: int = 0, chapters_done: dict | None = None) -> Job:
        """The job from its hash, each field cast to its declared type; fields
        this version does not know are left out."""
        values = {k.decode(): v.decode() for k, v in raw.items()}
        types = get_type_hints(cls)
        known = {name: types[name](values[name]) for name in cls.stored_fields() if name in values}
        chapters = {
            int(name[len(CHAPTER_FIELD):]): json.loads(value)
            for name, value in values.items() if name.startswith(CHAPTER_FIELD)
        }
        done = {int(chapter): int(count) for chapter, count in (chapters_done or {}).items()}
        return cls(**known, segments_done=segments_done, chapters=chapters, chapters_done=done)


# Create a job unless its owner is at the limit of unfinished jobs (-1: no limit).
_CREATE = """
-- KEYS: job, owner's unfinished jobs, every unfinished job, job -> owner, job -> expiry, owner's jobs
-- ARGV: limit, ttl, job id, owner, expires at, field, value, ...
if tonumber(ARGV[1]) >= 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[5], ARGV[5], ARGV[3])
redis.call('ZADD', KEYS[6], tonumber(ARGV[5]) - tonumber(ARGV[2]), ARGV[3])
return 1
"""

# Apply one edge of EDGES: -1 no such job, 0 refused (not from this state), 1 done.
_TRANSITION = """
-- KEYS: job, every unfinished job, job -> expiry, attempts, chapters sent, webhooks due, endings by state,
--       done, chapter-done
-- ARGV: job id, edge (JSON), now, ttl, owner-set prefix, owner-set suffix, run ('' for any), field, value, ...
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
local edge = cjson.decode(ARGV[2])
if not edge.sources[state] then return 0 end
if ARGV[7] ~= '' and (redis.call('HGET', KEYS[1], 'redrives') or '0') ~= ARGV[7] then return 0 end
if edge.overdue_only[state] then
  local deadline = tonumber(redis.call('HGET', KEYS[1], 'deadline_at') or '0')
  if deadline >= tonumber(ARGV[3]) then return 0 end
end
local id = ARGV[1]
local owner_active = ARGV[5] .. (redis.call('HGET', KEYS[1], 'owner') or '') .. ARGV[6]
if edge.target ~= '' then redis.call('HSET', KEYS[1], 'state', edge.target) end
for i = 8, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
if edge.final then
  redis.call('SREM', owner_active, id)
  redis.call('SREM', KEYS[2], id)
  redis.call('HINCRBY', KEYS[7], edge.target, 1)
  -- the outbox: this ending's webhook is due now, once
  local url = redis.call('HGET', KEYS[1], 'webhook_url')
  if url and url ~= '' then
    local delivery = id .. '.' .. (redis.call('HGET', KEYS[1], 'redrives') or '0')
    redis.call('HSET', KEYS[1], 'webhook_state', 'pending', 'webhook_delivery', delivery, 'webhook_attempts', 0,
      'webhook_code', 0, 'webhook_error', '', 'webhook_attempted_at', '', 'webhook_next_at', ARGV[3],
      'webhook_delivered_at', '')
    redis.call('ZADD', KEYS[6], ARGV[3], id)
  end
elseif edge.target ~= '' then
  redis.call('SADD', owner_active, id)
  redis.call('SADD', KEYS[2], id)
end
if edge.requeue then
  -- a failed job queued again: its failure's webhook, if still undelivered, is
  -- dropped; its next ending sends one
  if redis.call('ZREM', KEYS[6], id) == 1 then redis.call('HSET', KEYS[1], 'webhook_state', '') end
  redis.call('HINCRBY', KEYS[1], 'redrives', 1)
  redis.call('DEL', KEYS[4])
  -- chapters announced but never delivered may be announced again
  for _, chapter in ipairs(redis.call('HKEYS', KEYS[5])) do
    if redis.call('HEXISTS', KEYS[1], 'chapter:' .. chapter) == 0 then redis.call('HDEL', KEYS[5], chapter) end
  end
  -- the record lives ttl from now, and the work done so far with it
  for _, key in ipairs({KEYS[1], KEYS[5], KEYS[8], KEYS[9]}) do redis.call('EXPIRE', key, ARGV[4]) end
  redis.call('ZADD', KEYS[3], tonumber(ARGV[3]) + tonumber(ARGV[4]), id)
end
if edge.opens_run then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
return 1
"""

# The run check, the final-state check and the attempt count of a task's
# start, in one step: {state or '', starts of this unit (0 when not counted:
# stale, final, or no unit), 1 when the task is left from an earlier run}. The
# attempts hash gets its lifetime when the run opens (EDGES["start"]), not here.
_BEGIN = f"""
-- KEYS: job, attempts   ARGV: unit ('' counts nothing), run ('' for any)
local found = redis.call('HMGET', KEYS[1], 'state', 'redrives')
local state = found[1]
if not state then return {{'', 0, 0}} end
if ARGV[2] ~= '' and found[2] and found[2] ~= ARGV[2] then return {{state, 0, 1}} end
local final = {FINAL_LUA}
if final[state] or ARGV[1] == '' then return {{state, 0, 0}} end
return {{state, redis.call('HINCRBY', KEYS[2], ARGV[1], 1), 0}}
"""

# Record finished segments; return the chapters this completed, each once.
# Nothing for a job whose record is gone: no side key outlives its job.
_SEGMENTS_DONE = """
-- KEYS: done, chapter-done, chapters sent, job   ARGV: ttl, then index, chapter, chapter size, ...
local complete = {}
if redis.call('EXISTS', KEYS[4]) == 0 then return complete end
for i = 2, #ARGV, 3 do
  local chapter = ARGV[i + 1]
  if redis.call('SADD', KEYS[1], ARGV[i]) == 1 then redis.call('HINCRBY', KEYS[2], chapter, 1) end
  local finished = tonumber(redis.call('HGET', KEYS[2], chapter) or '0')
  if finished >= tonumber(ARGV[i + 2]) and redis.call('HSETNX', KEYS[3], chapter, 1) == 1 then
    table.insert(complete, tonumber(chapter))
  end
end
for k = 1, 3 do redis.call('EXPIRE', KEYS[k], ARGV[1]) end
return complete
"""

# Count a memory release of a worker for the job, while the job exists.
_RELEASE = """
-- KEYS: job, releases   ARGV: worker, ttl
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""

# Forget a job: its record, side keys and index entries. 'finished': only a
# job in a final state (DELETE by its owner). 'expired': only a job whose
# record is gone or whose time has come (the sweeper).
_FORGET = f"""
-- KEYS: job, every unfinished job, job -> owner, job -> expiry, webhooks due, job -> chord, side keys...
-- ARGV: job id, why, now, owner's unfinished jobs (prefix, suffix), owner's jobs (prefix, suffix),
--       chord key prefix
local id = ARGV[1]
local state = redis.call('HGET', KEYS[1], 'state')
if ARGV[2] == 'finished' then
  if not state then return -1 end
  local final = {FINAL_LUA}
  if not final[state] then return 0 end
elseif state then
  local expires = redis.call('ZSCORE', KEYS[4], id)
  if not expires or tonumber(expires) > tonumber(ARGV[3]) then return 0 end
end
local owner = redis.call('HGET', KEYS[3], id)
if not owner and state then owner = redis.call('HGET', KEYS[1], 'owner') end
if owner then
  redis.call('SREM', ARGV[4] .. owner .. ARGV[5], id)
  redis.call('ZREM', ARGV[6] .. owner .. ARGV[7], id)
end
redis.call('SREM', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('ZREM', KEYS[4], id)
redis.call('ZREM', KEYS[5], id)
-- A chord removes its keys once every part has returned; one whose keys are
-- still there when its job's time has come lost a part for good.
local chord = redis.call('HGET', KEYS[6], id)
if chord and ARGV[2] == 'expired' then
  local prefix = ARGV[8] .. chord
  redis.call('DEL', prefix .. '.j', prefix .. '.t', prefix .. '.s', prefix .. '.d')
end
redis.call('HDEL', KEYS[6], id)
redis.call('DEL', unpack(KEYS, 7))
redis.call('DEL', KEYS[1])
return 1
"""

class JobStore:
    # The keys (see the module's docstring): templates take the job's id, or the owner.
    JOB = "chorus:job:{0}"
    JOB_PART = "chorus:job:{0}:{1}"  # a side key: done, chapter-done, ...
    OWNER_ACTIVE = "chorus:owner:{0}:active"
    OWNER_JOBS = "chorus:owner:{0}:jobs"
    ACTIVE = "chorus:jobs:active"  # every job not in a final state, for the watchdog
    OWNERS = "chorus:jobs:owners"  # job -> owner, so a job whose record expired still frees its owner's slot
    CHORDS = "chorus:jobs:chords"  # job -> its latest chord's group id, so the sweeper can drop a stuck chord's keys
    EXPIRY = "chorus:jobs:expiry"  # job -> unix time its record expires, for the sweeper
    WEBHOOKS_DUE = "chorus:webhooks:due"  # job -> unix time its webhook's next attempt is due: the outbox
    FINISHED = "chorus:jobs:finished"  # final state -> endings so far, for /metrics

    def __init__(self, client: redis.Redis, ttl_s: int, queued_deadline_s: float = 600.0) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        # A queued job whose split has not started this long after it was
        # queued is the watchdog's business.
        self.queued_deadline_s = queued_deadline_s
        self._create = client.register_script(_CREATE)
        self._transition = client.register_script(_TRANSITION)
        self._begin = client.register_script(_BEGIN)
        self._segments_done = client.register_script(_SEGMENTS_DONE)
        self._forget = client.register_script(_FORGET)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def _key(cls, job_id: str, part: str = "") -> str:
        """The job's hash, or one of its side keys."""
        return cls.JOB_PART.format(job_id, part) if part else cls.JOB.format(job_id)

    @classmethod
    def _owned_key(cls, owner: str) -> str:
        return cls.OWNER_JOBS.format(owner)

    @classmethod
    def _active_key(cls, owner: str) -> str:
        return cls.OWNER_ACTIVE.format(owner)

    # -- reading ---------------------------------------------------------------

    def _read(self, pipe: redis.client.Pipeline | AsyncPipeline, job_id: str) -> None:
        """Queue the reads of one job on a pipeline, sync or asyncio: its
        hash, its count of finished segments and its chapters' counts, in the
        order ``_job`` takes them (``_READ_REPLIES`` replies)."""
        pipe.hgetall(self._key(job_id))
        pipe.scard(self._key(job_id, "done"))
        pipe.hgetall(self._key(job_id, "chapter-done"))

    def get(self, job_id: str) -> Job:
        with self.redis.pipeline() as pipe:
            self._read(pipe, job_id)
            raw, done, chapters_done = pipe.execute()
        return self._job(job_id, raw, done, chapters_done)

    async def get_async(self, client: AsyncRedis, job_id: str) -> Job:
        """``get`` on an asyncio client, for the API's status polls: one round
        trip, and no thread waiting for the interpreter lock around it."""
        async with client.pipeline(transaction=False) as pipe:
            self._read(pipe, job_id)
            raw, done, chapters_done = await pipe.execute()
        return self._job(job_id, raw, done, chapters_done)

    async def segment_done_async(self, client: AsyncRedis, job_id: str, index: int) -> tuple[JobState | None, bool]:
        """The job's state and whether segment ``index`` is done, in one round
        trip (``/v1/audio/speech`` waits on this for each segment in turn)."""
        async with client.pipeline(transaction=False) as pipe:
            pipe.hget(self._key(job_id), "state")
            pipe.sismember(self._key(job_id, "done"), str(index))
            state, done = await pipe.execute()
        return (JobState(state.decode()) if state else None), bool(done)

    async def list_async(
        self, client: AsyncRedis, owner: str, limit: int, state: JobState | None = None, before: float | None = None,
    ) -> tuple[list[Job], float | None]:
        """The owner's jobs, newest first: up to ``limit`` of them (in ``state``,
        if given) created before ``before``, and where the next page starts
        (None at the end). A page looks at no more than ``LIST_SCAN`` jobs, so a
        filter that matches rarely gives a short page, never a slow one."""
        key, high, seen = self._owned_key(owner), "+inf" if before is None else f"({before!r}", 0
        found: list[Job] = []
        while seen < LIST_SCAN:
            entries = await client.zrevrangebyscore(key, high, "-inf", start=0, num=LIST_CHUNK, withscores=True)
            if not entries:
                return found, None
            async with client.pipeline(transaction=False) as pipe:
                for job_id, _ in entries:
                    self._read(pipe, job_id.decode())
                replies = await pipe.execute()
            for number, (job_id, created) in enumerate(entries):
                seen += 1
                raw, done, chapters_done = replies[_READ_REPLIES * number : _READ_REPLIES * (number + 1)]
                if raw:  # a record that expired has no page; the sweeper removes its entry
                    job = Job.from_redis(raw, segments_done=int(done), chapters_done=chapters_done)
                    if state is None or job.state == state:
                        found.append(job)
                if len(found) == limit:
                    return found, created
            high = f"({entries[-1][1]!r}"
        return found, float(high[1:])

    @staticmethod
    def _job(job_id: str, raw: dict[bytes, bytes], done: int, chapters_done: dict | None = None) -> Job:
        if not raw:
            raise JobNotFound(f"no job with id {job_id!r}")
        return Job.from_redis(raw, segments_done=int(done), chapters_done=chapters_done)

    def state(self, job_id: str) -> JobState | None:
        """The job's state; None when there is no such job (or it expired)."""
        raw = self.redis.hget(self._key(job_id), "state")
        return JobState(raw.decode()) if raw else None

    def active_ids(self) -> list[str]:
        return sorted(member.decode() for member in self.redis.smembers(self.ACTIVE))

    def active_jobs(self, owner: str) -> int:
        """How many of the owner's jobs are not finished (for the concurrency limit)."""
        return int(self.redis.scard(self._active_key(owner)))

    def active_ids_of(self, owner: str) -> list[str]:
        """The owner's unfinished jobs (queued or running)."""
        return sorted(member.decode() for member in self.redis.smembers(self._active_key(owner)))

    def expired_ids(self, now: float, limit: int = 100) -> list[str]:
        """Jobs whose record's time has come, oldest first."""
        return [m.decode() for m in self.redis.zrangebyscore(self.EXPIRY, "-inf", now, start=0, num=limit)]

    def attempts(self, job_id: str) -> dict[str, int]:
        """Starts of each unit of work of the job since it was last queued."""
        return {k.decode(): int(v) for k, v in self.redis.hgetall(self._key(job_id, "attempts")).items()}

    # -- creating and forgetting -----------------------------------------------

    def create(
        self, voice: str, audio_format: str, title: str, author: str = "", owner: str = "",
        segments_total: int = 0, chapter_titles: list[str] | None = None, max_active: int | None = None,
        chapter_sizes: list[int] | None = None,
        webhook_url: str = "",
    ) -> Job:
        """Record a new queued job. With ``max_active``, atomically refuse it
        (``TooManyJobs``) when the owner already has that many jobs unfinished:
        the check and the insert are one Redis script, so concurrent requests,
        in one API process or several, never pass the limit together."""
        now = time.time()
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
            chapter_sizes=json.dumps(chapter_sizes or []),
            webhook_url=webhook_url,
            created_at=utc_now(),
            deadline_at=now + self.queued_deadline_s,  # its split must have started by then
        )
        mapping = [part for name, value in job.to_redis().items() for part in (name, value)]
        limit = -1 if max_active is None else max_active
        created = self._create(
            keys=[self._key(job.id), self._active_key(owner), self.ACTIVE, self.OWNERS, self.EXPIRY,
                  self._owned_key(owner)],
            args=[limit, self.ttl_s, job.id, owner, now + self.ttl_s, *mapping],
        )
        if not created:
            raise TooManyJobs(f"this key already has {max_active} jobs running; wait for one to finish")
        return job

    def remove(self, job_id: str) -> bool:
        """Forget a finished job (its owner deleted it); False while it is unfinished."""
        return self._forget_job(job_id, "finished")

    def forget_expired(self, job_id: str, now: float | None = None) -> bool:
        """Forget a job whose record is gone or whose time has come: free its
        owner's slot, drop its side keys and index entries."""
        return self._forget_job(job_id, "expired", now)

    def _forget_job(self, job_id: str, why: str, now: float | None = None) -> bool:
        keys = [self._key(job_id), self.ACTIVE, self.OWNERS, self.EXPIRY, self.WEBHOOKS_DUE, self.CHORDS,
                *(self._key(job_id, p) for p in _SIDE_KEYS)]
        args = [job_id, why, time.time() if now is None else now,
                *split_key_template(self.OWNER_ACTIVE), *split_key_template(self.OWNER_JOBS), CHORD_KEY_PREFIX]
        return self._forget(keys=keys, args=args) == 1

    # -- transitions -------------------------------------------------------------

    def _apply(self, edge: str, job_id: str, now: float | None = None, run: int | None = None, **values: object) -> bool:
        """Apply one edge of EDGES; False when the job is not in one of its
        sources (or is gone), or, given ``run``, when the job has been queued
        again since that run began (its ``redrives`` differ)."""
        pairs = [str(part) for name, value in values.items() for part in (name, value)]
        result = self._transition(
            keys=[self._key(job_id), self.ACTIVE, self.EXPIRY, self._key(job_id, "attempts"),
                  self._key(job_id, "chapters-sent"), self.WEBHOOKS_DUE, self.FINISHED, self._key(job_id, "done"),
                  self._key(job_id, "chapter-done")],
            args=[job_id, _EDGE_DOCUMENTS[edge], time.time() if now is None else now, self.ttl_s, *split_key_template(self.OWNER_ACTIVE),
                  "" if run is None else str(run), *pairs],
        )
        return result == 1

    def start(self, job_id: str, cache_hits: int, deadline_at: float) -> bool:
        return self._apply("start", job_id, deadline_at=deadline_at, cache_hits=cache_hits, started_at=utc_now())

    def start_assembly(self, job_id: str, run: int | None = None) -> bool:
        return self._apply("assemble", job_id, run=run)

    def finish(
        self, job_id: str, result_key: str, manifest_key: str, audio_seconds: float, artefacts: dict[str, str],
        suspect_segments: int = 0,
    ) -> bool:
        return self._apply(
            "finish", job_id,
            suspect_segments=suspect_segments,
            result_key=result_key,
            manifest_key=manifest_key,
            artefacts=json.dumps(artefacts),
            audio_seconds=round(audio_seconds, 3),
            finished_at=utc_now(),
        )

    def fail(self, job_id: str, reason: str, run: int | None = None) -> bool:
        """Mark the job failed; the first reason wins, a final state is kept.
        Given ``run``, only that run of the job can fail: a late error from a
        chord the job has been re-driven past changes nothing."""
        return self._apply("fail", job_id, run=run, error=reason, finished_at=utc_now())

    def redrives(self, job_id: str) -> int | None:
        """The job's current run: how often it was queued again (its ``redrives``); None if gone."""
        value = self.redis.hget(self._key(job_id), "redrives")
        return None if value is None else int(value)

    def cancel(self, job_id: str) -> bool:
        return self._apply("cancel", job_id, error="cancelled", finished_at=utc_now())

    def resume(self, job_id: str, now: float | None = None) -> bool:
        """Back to queued for another split, if the job failed or is unfinished
        past its deadline (never when done or cancelled). Attempts start again,
        chapters not yet delivered may be announced again, finished segments
        stay done, and the record lives ``ttl_s`` from now."""
        now = time.time() if now is None else now
        return self._apply(
            "resume", job_id, now=now, error="", finished_at="", deadline_at=now + self.queued_deadline_s
        )

    def postpone(self, job_id: str, deadline_at: float) -> bool:
        """A later deadline for an unfinished job that is waiting behind other work."""
        return self._apply("postpone", job_id, deadline_at=deadline_at)

    def chapter_ready(self, job_id: str, chapter: int, key: str, seconds: float) -> bool:
        """Record a chapter's file, unless the job failed, was cancelled or went back to the queue."""
        document = json.dumps({"key": key, "seconds": round(seconds, 3)})
        return self._apply("chapter", job_id, **{f"{CHAPTER_FIELD}{chapter}": document})

    # -- the work of a job -------------------------------------------------------

    def begin(self, job_id: str, unit: str = "", run: int | None = None) -> Start:
        """A task's start, in one step: the job's state (None if there is no
        such job) and, unless it is final, one more start of ``unit`` counted.
        Given ``run``, a task left from an earlier run of a job re-driven since
        counts nothing and is ``stale``. Redelivery after a lost worker does
        not pass through Celery's retry counter, so starts are counted here,
        where a crash cannot skip them."""
        state, starts, stale = self._begin(keys=[self._key(job_id), self._key(job_id, "attempts")],
                                           args=[unit, "" if run is None else str(run)])
        return Start(JobState(state.decode()) if state else None, int(starts), bool(stale))

    def segments_done(self, job_id: str, done: list[tuple[int, int]], chapter_sizes: dict[int, int]) -> list[int]:
        """Record finished segments, given as (index, chapter); return the
        chapters this completed. A set, not a counter, so a redelivered segment
        counts once, and each chapter is reported complete exactly once."""
        if not done:
            return []
        args: list[int] = [self.ttl_s]
        for index, chapter in done:
            args += [index, chapter, chapter_sizes[chapter]]
        keys = [self._key(job_id, "done"), self._key(job_id, "chapter-done"), self._key(job_id, "chapters-sent"),
                self._key(job_id)]
        return [int(c) for c in self._segments_done(keys=keys, args=args)]

    def record_chord(self, job_id: str, group_id: str) -> None:
        """The chord of the job's latest run: its keys in the result backend
        carry no expiry, and go with the job if they are still there when it
        is forgotten as expired."""
        self.redis.hset(self.CHORDS, job_id, group_id)

    def record_release(self, job_id: str, worker: str) -> None:
        self._release(keys=[self._key(job_id), self._key(job_id, "releases")], args=[worker, self.ttl_s])

    def releases(self, job_id: str) -> dict[str, int]:
        raw = self.redis.hgetall(self._key(job_id, "releases"))
        return {k.decode(): int(v) for k, v in raw.items()}


_EDGE_DOCUMENTS = {name: edge.document() for name, edge in EDGES.items()}
