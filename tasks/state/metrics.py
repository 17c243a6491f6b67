"""The figures operators and autoscalers read (``GET /metrics``), kept in Redis.

Workers are separate processes on other machines, so nothing is counted in
process memory: each synthesised segment adds to its model's hash in one
atomic step (its audio seconds, synthesis seconds and one latency bucket
together, so a reader never sees a count without its sum; a synthesis worker
does it within the segment's completion, ``tasks/state/completion.py``):

    chorus:metrics:model:<model>    hash: audio_seconds, synthesis_seconds,
                                          le:<bound> -> segments that took at most <bound>
                                          seconds and more than the bound below it

A model's segments are its buckets' sum (a ``segments`` field that older
versions also kept is the same sum, and is not read).

Job endings are counted by the job's final transition itself
(``JobStore.FINISHED``, in the same Lua step), queue depths and live workers
come from the broker's lists and the heartbeats (``Backlog``), and unfinished
jobs by state from the set of unfinished jobs. ``read`` gathers all of it in
one pipelined round trip. No figure names an API key or a job.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis

from chorus.tasks.state.backlog import STALE_S, Backlog
from chorus.tasks.state.jobs import FINAL, UNFINISHED, JobStore, split_key_template

# Seconds of synthesis per segment: Piper on a CPU core takes tenths of a
# second, CosyVoice2 on a GPU seconds, a cold or overloaded model a minute.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_OVERFLOW = "le:+Inf"

# Unfinished jobs by state, counted where the data is: one round trip whatever
# the number of jobs (the set holds only unfinished ones, bounded by the keys'
# concurrency limits).
_UNFINISHED_BY_STATE = """
-- KEYS: every unfinished job   ARGV: job-key prefix
local counts = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local state = redis.call('HGET', ARGV[1] .. id, 'state')
  if state then counts[state] = (counts[state] or 0) + 1 end
end
local flat = {}
for state, n in pairs(counts) do
  table.insert(flat, state)
  table.insert(flat, n)
end
return flat
"""


def bucket_field(seconds: float) -> str:
    """The hash field of the narrowest latency bucket that holds ``seconds``."""
    return next((f"le:{bound}" for bound in LATENCY_BUCKETS if seconds <= bound), _OVERFLOW)


@dataclass
class ModelFigures:
    segments: int = 0
    audio_seconds: float = 0.0
    synthesis_seconds: float = 0.0
    # (upper bound, segments that took at most that long), cumulative, ending with +inf
    latency: list[tuple[float, int]] = field(default_factory=list)


@dataclass
class Snapshot:
    queued: dict[str, int]  # queue -> messages waiting, every priority level together
    workers: dict[str, int]  # queue -> workers that sent a heartbeat within STALE_S
    models: dict[str, ModelFigures]
    jobs: dict[str, int]  # unfinished state -> jobs in it now
    finished: dict[str, int]  # final state -> jobs that ended so, ever


class Metrics:
    FIGURES = "chorus:metrics:model:{0}"  # hash: one model's figures

    def __init__(self, client: redis.Redis, backlog: Backlog) -> None:
        self.redis = client
        self.backlog = backlog

    @staticmethod
    def _key(model: str) -> str:
        return Metrics.FIGURES.format(model)

    def segment_spoken(self, model: str, synthesis_s: float, audio_s: float) -> None:
        """One segment synthesised by ``model``: ``synthesis_s`` seconds of work
        (every take) for ``audio_s`` seconds of audio."""
        key = self._key(model)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrbyfloat(key, "audio_seconds", audio_s)
            pipe.hincrbyfloat(key, "synthesis_seconds", synthesis_s)
            pipe.hincrby(key, bucket_field(synthesis_s), 1)
            pipe.execute()

    def read(self, models: Sequence[str], queues: Sequence[str], now: float | None = None) -> Snapshot:
        """Every figure, in one pipelined round trip."""
        now = time.time() if now is None else now
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                for name in self.backlog.lists(queue):
                    pipe.llen(name)
                pipe.zcount(Backlog.workers_key(queue), now - STALE_S, "+inf")
            for model in models:
                pipe.hgetall(self._key(model))
            pipe.hgetall(JobStore.FINISHED)
            pipe.eval(_UNFINISHED_BY_STATE, 1, JobStore.ACTIVE, split_key_template(JobStore.JOB)[0])
            replies = iter(pipe.execute())

        queued, workers = {}, {}
        for queue in queues:
            queued[queue] = sum(next(replies) for _ in self.backlog.lists(queue))
            workers[queue] = int(next(replies))
        figures = {model: _figures(next(replies)) for model in models}
        endings = {k.decode(): int(v) for k, v in next(replies).items()}
        flat = next(replies)
        current = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Snapshot(
            queued=queued,
            workers=workers,
            models=figures,
            jobs={state.value: current.get(state.value, 0) for state in sorted(UNFINISHED)},
            finished={state.value: endings.get(state.value, 0) for state in sorted(FINAL)},
        )


def _figures(raw: dict[bytes, bytes]) -> ModelFigures:
    values = {k.decode(): v.decode() for k, v in raw.items()}
    latency, total = [], 0
    for bound in LATENCY_BUCKETS:
        total += int(values.get(f"le:{bound}", 0))
        latency.append((bound, total))
    latency.append((float("inf"), total + int(values.get(_OVERFLOW, 0))))
    return ModelFigures(
        segments=latency[-1][1],
        audio_seconds=float(values.get("audio_seconds", 0)),
        synthesis_seconds=float(values.get("synthesis_seconds", 0)),
        latency=latency,
    )
