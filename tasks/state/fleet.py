"""What each synthesis worker reports about itself, in Redis: one hash per
worker node (``chorus:worker:<node>``) with its model, the process that holds
the model, how often it loaded it, how many segments it spoke (counted within
each segment's completion, ``tasks/state/completion.py``) and how often it
released memory. Operators read it; tests count with it."""

from __future__ import annotations

import redis

from chorus.tasks.state.jobs import utc_now


class Fleet:
    RECORD = "chorus:worker:{0}"  # hash: one worker node's record

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s

    @staticmethod
    def _key(node: str) -> str:
        return Fleet.RECORD.format(node)

    def _record(self, node: str, counter: str | None = None, **fields: object) -> None:
        key = self._key(node)
        with self.redis.pipeline() as pipe:
            if fields:
                pipe.hset(key, mapping={k: str(v) for k, v in fields.items()})
            if counter:
                pipe.hincrby(key, counter, 1)
            pipe.expire(key, self.ttl_s)
            pipe.execute()

    def model_loaded(self, node: str, model: str, pid: int, provider: str, seconds: float) -> None:
        self._record(node, "loads", model=model, pid=pid, provider=provider, load_seconds=round(seconds, 3), loaded_at=utc_now())

    def memory_released(self, node: str) -> None:
        self._record(node, "releases")

    def speaker_registered(self, node: str) -> None:
        self._record(node, "speaker_registrations")

    def speaker_forgotten(self, node: str) -> None:
        self._record(node, "speakers_forgotten")

    def nodes_of(self, model: str) -> list[str]:
        """Worker nodes that have loaded this model (and not expired)."""
        nodes = []
        for key in self.redis.scan_iter(self._key("*")):
            if self.redis.hget(key, "model") == model.encode():
                nodes.append(key.decode().split(":", 2)[2])
        return sorted(nodes)

    def get(self, node: str) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.redis.hgetall(self._key(node)).items()}
