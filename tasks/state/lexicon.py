"""Each API key's pronunciation lexicon, in Redis: one hash per key id, the
entry's identity (its word without case) -> the entry as JSON.

A submission reads the key's lexicon once, when the job is planned; the plan
keeps the entries, so editing the lexicon never changes a job already
accepted. Entries are checked (``chorus.tasks.text.spoken.lexicon.entry``) before
they are stored, and a key holds at most ``MAX_ENTRIES``: the bound is kept
by Redis itself (a script), so two requests at once cannot pass it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict

import redis

from chorus.tasks.errors import InputError
from chorus.tasks.text.spoken.lexicon import MAX_ENTRIES, Entry, identity, merge

# Set one entry unless that would make the hash hold more than ARGV[3] entries.
_PUT_ONE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class LexiconStore:
    KEY = "chorus:lexicon:{0}"  # hash per API key id: identity -> entry

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._put_one = client.register_script(_PUT_ONE)

    def _key(self, owner: str) -> str:
        return self.KEY.format(owner)

    def entries(self, owner: str) -> tuple[Entry, ...]:
        """The key's entries, ordered by word."""
        return merge(Entry(**json.loads(raw)) for raw in self.redis.hvals(self._key(owner)))

    def put(self, owner: str, item: Entry) -> bool:
        """Store an entry (replacing the one for the same word, whatever its
        case); True if the word is new. InputError when the lexicon is full."""
        existed = self.redis.hexists(self._key(owner), item.identity)
        stored = self._put_one(keys=[self._key(owner)], args=[item.identity, _encode(item), MAX_ENTRIES])
        if not stored:
            raise InputError(f"this key's lexicon holds {MAX_ENTRIES} entries, the most it may; delete some first")
        return not existed

    def replace(self, owner: str, items: Iterable[Entry]) -> tuple[Entry, ...]:
        """The key's whole lexicon replaced at once (later entries for the same word win)."""
        merged = merge(items)
        if len(merged) > MAX_ENTRIES:
            raise InputError(f"a lexicon holds at most {MAX_ENTRIES} entries, not {len(merged)}")
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._key(owner))
        if merged:
            pipe.hset(self._key(owner), mapping={item.identity: _encode(item) for item in merged})
        pipe.execute()
        return merged

    def get(self, owner: str, word: str) -> Entry | None:
        raw = self.redis.hget(self._key(owner), identity(word))
        return Entry(**json.loads(raw)) if raw else None

    def remove(self, owner: str, word: str) -> bool:
        """Delete the entry for the word (any case); False if there was none."""
        return bool(self.redis.hdel(self._key(owner), identity(word)))


def _encode(item: Entry) -> str:
    return json.dumps(asdict(item), ensure_ascii=False)
