"""Every voice a job may ask for: the registry's, plus speakers registered
through the API from reference audio (kept in Redis, their clips in S3)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

import redis

from chorus.configs import Registry, Voice
from chorus.tasks.errors import UnknownVoice

S3_PREFIX = "s3:"


class VoiceBook:
    KEY = "chorus:voices"

    def __init__(self, registry: Registry, client: redis.Redis) -> None:
        self.registry = registry
        self.redis = client

    def get(self, voice_id: str, owner: str | None = None) -> Voice:
        """A voice by id. Given an owner, a voice registered by someone else is
        reported unknown (workers, which serve everyone, pass no owner)."""
        if voice_id in self.registry.voices:
            return self.registry.voices[voice_id]
        raw = self.redis.hget(self.KEY, voice_id)
        voice = Voice(**json.loads(raw)) if raw else None
        if voice is None or (owner is not None and voice.owner != owner):
            known = ", ".join(v.id for v in self.all(owner))
            raise UnknownVoice(f"unknown voice {voice_id!r}; available voices: {known}")
        return voice

    def registered(self, owner: str | None = None) -> list[Voice]:
        voices = (Voice(**json.loads(raw)) for raw in self.redis.hvals(self.KEY))
        return sorted((v for v in voices if owner is None or v.owner == owner), key=lambda v: v.id)

    def all(self, owner: str | None = None) -> list[Voice]:
        """The registry's voices and those registered (by ``owner``, if given)."""
        return [*self.registry.voices.values(), *self.registered(owner)]

    def by_id(self, owner: str | None = None) -> dict[str, Voice]:
        """``all(owner)`` keyed by id: what a submission may choose from."""
        return {voice.id: voice for voice in self.all(owner)}

    @staticmethod
    def new_id() -> str:
        return "v" + uuid.uuid4().hex[:16]

    def add(self, voice: Voice) -> None:
        self.redis.hset(self.KEY, voice.id, json.dumps(asdict(voice), ensure_ascii=False))

    def remove(self, voice_id: str) -> bool:
        return bool(self.redis.hdel(self.KEY, voice_id))
