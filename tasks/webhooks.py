"""``chorus.webhook``: deliver the webhooks of ended jobs from the outbox.

A job submitted with a ``webhook_url`` has its webhook made due by the very
script that moves it into ``done``, ``failed`` or ``cancelled``
(``tasks/state/outbox.py``), so no ending is lost between the
transition and a message, and none is due twice. The beat sends this task
every ``webhook_poll_s`` to the webhooks lane (queue ``chorus.webhooks``,
worker-webhooks: ``webhook_concurrency`` threads); each run claims due
webhooks one at a time until none is due or its time is up. No other kind of
work waits behind a slow receiver: at worst, other deliveries do.

Each attempt checks the URL again (``tasks/destinations.py``), resolving its
host now, and connects to an address it just checked; then POSTs the job's
status document, as ``GET /v1/jobs/{id}`` would answer it at that moment
(``tasks/state/status.py``), with these headers:

    Content-Type         application/json
    User-Agent           Chorus-Webhook/1
    X-Chorus-Event       job.done, job.failed or job.cancelled
    X-Chorus-Job         the job's id
    X-Chorus-Delivery    <job id>.<run>: the same on every attempt for one ending
                         (a receiver that saw it may drop repeats)
    X-Chorus-Attempt     1, 2, ...
    X-Chorus-Timestamp   unix seconds of this attempt (the same t as the signature's)
    X-Chorus-Signature   t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>",
                         keyed by the UTF-8 bytes of the API key's webhook secret>

The signature covers its timestamp: a receiver refuses a signature whose t is
too old (a replay), and one whose HMAC does not match (docs/integrations.md
shows the check). Redirects are not followed.

Each attempt has a hard deadline, ``webhook_timeout_s``, for the whole of it:
the URL's check (its name resolved), the connection, the answer's headers.
A receiver that trickles its answer a byte at a time is cut off there.

A 2xx answer delivers it. Anything else (no connection, a timeout, any other
status) is retried: after attempt n the next is due between half and all of
``webhook_backoff_s`` x 2^(n-1), capped at ``webhook_backoff_max_s``, until
``webhook_attempts`` were made; then it has failed. A URL refused by the check
fails at once. Every attempt is recorded in the job (its status's ``webhook``).
Delivery is at least once: a worker that dies after the receiver answered but
before the outcome was recorded leaves the attempt to be made again, with the
same delivery id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import redis

from chorus.configs import Settings, get_settings
from chorus.tasks import clients
from chorus.tasks.app import app
from chorus.tasks.destinations import Destination, Policy, check_webhook_url
from chorus.tasks.errors import ChorusError, JobNotFound, WebhookRefused
from chorus.tasks.names import WEBHOOK_TASK, WEBHOOKS_QUEUE
from chorus.tasks.state.jobs import Job
from chorus.tasks.state.outbox import WebhookClaim
from chorus.tasks.state.status import status_document

log = logging.getLogger(__name__)

USER_AGENT = "Chorus-Webhook/1"
SIGNATURE_VERSION = "v1"
# A claim is held this much longer than an attempt can take (a resolution, a
# connection, the answer), so no other run takes it over while it is in flight.
LEASE_MARGIN_S = 60.0
ERROR_CHARS = 300  # of an error kept in the job's record


class AttemptTimedOut(ChorusError):
    """A webhook attempt did not end within webhook_timeout_s."""


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The X-Chorus-Signature value of a body sent at ``timestamp`` (unix seconds):
    ``t=<timestamp>,v1=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},{SIGNATURE_VERSION}=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def backoff_s(attempt: int, settings: Settings, draw: float | None = None) -> float:
    """The wait after failed attempt ``attempt`` (1 for the first): between half and
    all of the capped exponential step, so receivers that failed together are not
    called back together."""
    step = min(settings.webhook_backoff_s * 2 ** (attempt - 1), settings.webhook_backoff_max_s)
    return step * (0.5 + 0.5 * (random.random() if draw is None else draw))


def headers_for(job: Job, claim: WebhookClaim, secret: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Chorus-Event": f"job.{job.state.value}",
        "X-Chorus-Job": job.id,
        "X-Chorus-Delivery": claim.delivery,
        "X-Chorus-Attempt": str(claim.attempt),
        "X-Chorus-Timestamp": str(timestamp),
        "X-Chorus-Signature": sign(secret, body, timestamp),
    }


def post(url: str, policy: Policy, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[Destination, int]:
    """Check the URL (resolving its host now), then POST to the first checked
    address; the destination and the answer's status. The whole of it, check
    included, ends within ``timeout_s`` or raises AttemptTimedOut: httpx's own
    timeouts bound each read, not the attempt, and a receiver sending a byte
    now and then would hold the attempt for ever. No proxy from the environment
    (it would connect elsewhere), no redirect, and the answer's body is never read."""

    async def attempt() -> tuple[Destination, int]:
        # getaddrinfo blocks: in a thread of its own, so the deadline holds while
        # it resolves, and one left resolving is abandoned, not waited for.
        resolver = ThreadPoolExecutor(1, thread_name_prefix="webhook-resolve")
        try:
            destination = await asyncio.get_running_loop().run_in_executor(resolver, check_webhook_url, url, policy)
        finally:
            resolver.shutdown(wait=False)
        extensions = {"sni_hostname": destination.server_name} if destination.server_name else {}
        async with httpx.AsyncClient(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
            request = client.build_request(
                "POST", destination.pinned_url(destination.addresses[0]), content=body,
                headers={**headers, "Host": destination.host_header}, extensions=extensions,
            )
            response = await client.send(request, stream=True)
            await response.aclose()
            return destination, response.status_code

    async def bounded() -> tuple[Destination, int]:
        # Cancelled at the deadline, the client closes its connection on the way out.
        try:
            return await asyncio.wait_for(attempt(), timeout_s)
        except TimeoutError:
            raise AttemptTimedOut(f"no answer within {timeout_s:g} s") from None

    return asyncio.run(bounded())


def attempt(claim: WebhookClaim, settings: Settings) -> str:
    """Make one claimed attempt and record its outcome; the outcome."""
    outbox = clients.outbox()
    try:
        job = clients.jobs().get(claim.job_id)
    except JobNotFound:  # forgotten meanwhile: its outbox entry went with it
        return "gone"
    code, error, host = 0, "", job.webhook_url
    try:
        body = status_document(job, clients.storage()).model_dump_json().encode("utf-8")
        secret = clients.keys().ensure_webhook_secret(job.owner)
        headers = headers_for(job, claim, secret, body, time.time())
        destination, code = post(job.webhook_url, Policy.of(settings), body, headers, settings.webhook_timeout_s)
        host = destination.host
    except WebhookRefused as exc:
        outbox.record(claim, "failed", error=f"refused: {exc}"[:ERROR_CHARS])
        log.warning("job %s: webhook refused: %s", job.id, exc)
        return "failed"
    except (httpx.HTTPError, ChorusError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    if 200 <= code < 300:
        outcome, next_at = "delivered", 0.0
    else:
        error = error or f"HTTP {code}"
        last = claim.attempt >= settings.webhook_attempts
        outcome = "failed" if last else "retry"
        next_at = 0.0 if last else time.time() + backoff_s(claim.attempt, settings)
    outbox.record(claim, outcome, code=code, error=error[:ERROR_CHARS], next_at=next_at)
    log.info("job %s: webhook %s attempt %d to %s: %s (%s)", job.id, claim.delivery, claim.attempt,
             host, outcome, code or error)
    return outcome


@app.task(name=WEBHOOK_TASK, queue=WEBHOOKS_QUEUE, ignore_result=True)
def webhook() -> int:
    """Deliver what is due, one attempt after another; the number of attempts
    made. Runs side by side in the webhooks worker's threads, each claiming its own."""
    settings, outbox = get_settings(), clients.outbox()
    lease_s = 2 * settings.webhook_timeout_s + LEASE_MARGIN_S
    # No new claim after this: a run lasts about two attempts at most.
    stop_at = time.monotonic() + settings.webhook_timeout_s
    made, claim = 0, outbox.claim(lease_s, settings.webhook_attempts)
    while claim is not None:
        try:
            attempt(claim, settings)
        except redis.RedisError as exc:  # its lease runs out and it is attempted again
            log.warning("job %s: webhook attempt not recorded: %s", claim.job_id, exc)
        made += 1
        claim = outbox.claim(lease_s, settings.webhook_attempts) if time.monotonic() < stop_at else None
    return made
