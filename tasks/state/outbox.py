"""The webhook outbox: the deliveries due of ended jobs, claimed and recorded
one attempt at a time.

The final transition of a job with a ``webhook_url`` (``JobStore``'s
transition script) marks its webhook pending and puts the job in
``chorus:webhooks:due``, in the same step as the final state, so a job never
ends without its webhook being due, and never has it due twice for one ending.
The delivery task (``tasks/webhooks.py``) claims due entries one at a time
(``claim``: the attempt is counted and the entry pushed a lease ahead,
atomically, so two deliverers never hold the same one) and records each
attempt's outcome (``record``). These scripts write only the job's webhook_*
fields, never its state: ``JobStore`` stays the one writer of job state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from chorus.tasks.state.jobs import FINAL_LUA, JobStore, split_key_template, utc_now


@dataclass(frozen=True)
class WebhookClaim:
    """One claimed delivery attempt of a job's webhook."""

    job_id: str
    attempt: int  # 1 for the first
    delivery: str  # the ending's delivery id (the same on every attempt)


# Claim the first due webhook: count its attempt and push its entry a lease
# ahead (a deliverer that dies mid-attempt leaves it due again once the lease
# ends), in one step. {job id, attempt, delivery}; {} when none is due. Entries
# with nothing to send (job gone, queued again) are dropped on the way.
_CLAIM = f"""
-- KEYS: webhooks due   ARGV: now, lease, attempts allowed, job-key prefix, now (ISO)
local final = {FINAL_LUA}
while true do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #due == 0 then return {{}} end
  local id = due[1]
  local job = ARGV[4] .. id
  local state = redis.call('HGET', job, 'state')
  if not state or not final[state] or redis.call('HGET', job, 'webhook_state') ~= 'pending' then
    redis.call('ZREM', KEYS[1], id)
  else
    local attempts = tonumber(redis.call('HGET', job, 'webhook_attempts') or '0')
    if attempts >= tonumber(ARGV[3]) then
      -- its last attempt was claimed and never recorded: the deliverer died
      redis.call('ZREM', KEYS[1], id)
      redis.call('HSET', job, 'webhook_state', 'failed', 'webhook_next_at', 0,
        'webhook_error', 'attempt ' .. attempts .. ' never reported back (its worker stopped)')
    else
      redis.call('HSET', job, 'webhook_attempts', attempts + 1, 'webhook_attempted_at', ARGV[5], 'webhook_next_at', 0)
      redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
      return {{id, attempts + 1, redis.call('HGET', job, 'webhook_delivery')}}
    end
  end
end
"""

# Record the outcome of a claimed attempt, unless it is no longer the current
# one (the job ended again since, or another deliverer's lease took over).
_RECORD = """
-- KEYS: job, webhooks due
-- ARGV: job id, delivery, attempt, outcome (delivered, retry, failed), status code, error, next at, now (ISO)
if redis.call('HGET', KEYS[1], 'webhook_state') ~= 'pending'
  or redis.call('HGET', KEYS[1], 'webhook_delivery') ~= ARGV[2]
  or redis.call('HGET', KEYS[1], 'webhook_attempts') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'webhook_code', ARGV[5], 'webhook_error', ARGV[6])
if ARGV[4] == 'retry' then
  redis.call('HSET', KEYS[1], 'webhook_next_at', ARGV[7])
  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'webhook_state', ARGV[4], 'webhook_next_at', 0)
  if ARGV[4] == 'delivered' then redis.call('HSET', KEYS[1], 'webhook_delivered_at', ARGV[8]) end
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"""


class Outbox:
    DUE = JobStore.WEBHOOKS_DUE  # job -> unix time its webhook's next attempt is due

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._claim = client.register_script(_CLAIM)
        self._record = client.register_script(_RECORD)

    def claim(self, lease_s: float, max_attempts: int, now: float | None = None) -> WebhookClaim | None:
        """The first due webhook, its attempt counted and held for ``lease_s``;
        None when none is due. A webhook whose ``max_attempts`` were all claimed
        without an outcome recorded is marked failed on the way."""
        now = time.time() if now is None else now
        job_prefix, _ = split_key_template(JobStore.JOB)
        claimed = self._claim(keys=[self.DUE], args=[now, lease_s, max_attempts, job_prefix, utc_now()])
        if not claimed:
            return None
        job_id, attempt, delivery = claimed
        return WebhookClaim(job_id.decode(), int(attempt), delivery.decode())

    def record(self, claim: WebhookClaim, outcome: str, code: int = 0, error: str = "", next_at: float = 0.0) -> bool:
        """The outcome of a claimed attempt: 'delivered', 'retry' (due again at
        ``next_at``) or 'failed' (given up). False when the claim is stale."""
        keys = [JobStore.JOB.format(claim.job_id), self.DUE]
        args = [claim.job_id, claim.delivery, claim.attempt, outcome, code, error, next_at, utc_now()]
        return self._record(keys=keys, args=args) == 1

    def due(self) -> dict[str, float]:
        """Every job in the outbox and when its webhook is due (operators, tests)."""
        return {m.decode(): score for m, score in self.redis.zrange(self.DUE, 0, -1, withscores=True)}
