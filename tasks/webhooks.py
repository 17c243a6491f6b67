"""``chorus.webhook``: deliver the webhooks of ended jobs from the outbox.

A job submitted with a ``webhook_url`` has its webhook made due by the very
script that moves it into ``done``, ``failed`` or ``cancelled``
(``tasks/state/outbox.py``), so no ending is lost between the
transition and a message, and none is due twice. The jobs worker's beat runs
this task every ``webhook_poll_s``; each run claims due webhooks one at a time
(a few attempts at once, in threads) until none is due or its time is up, so
the jobs queue never waits long behind it.

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
    X-Chorus-Timestamp   unix seconds of this attempt
    X-Chorus-Signature   sha256=<hex HMAC-SHA256 of the raw body, keyed by the
                         UTF-8 bytes of the API key's webhook secret>

The body's ``webhook`` object names the delivery and the attempt, and its
``last_attempt_at`` is this attempt's time: both are signed, so a receiver can
refuse replays of old bodies. Redirects are not followed.

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
from chorus.tasks.names import JOBS_QUEUE, WEBHOOK_TASK
from chorus.tasks.state.jobs import Job
from chorus.tasks.state.outbox import WebhookClaim
from chorus.tasks.state.status import status_document

log = logging.getLogger(__name__)

USER_AGENT = "Chorus-Webhook/1"
SIGNATURE_PREFIX = "sha256="
THREADS = 4  # attempts in flight at once in one run
# A claim is held this much longer than an attempt can take (a resolution, a
# connection, the answer), so no other run takes it over while it is in flight.
LEASE_MARGIN_S = 60.0
ERROR_CHARS = 300  # of an error kept in the job's record


def sign(secret: str, body: bytes) -> str:
    """The X-Chorus-Signature value of a body."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def backoff_s(attempt: int, settings: Settings, draw: float | None = None) -> float:
    """The wait after failed attempt ``attempt`` (1 for the first): between half and
    all of the capped exponential step, so receivers that failed together are not
    called back together."""
    step = min(settings.webhook_backoff_s * 2 ** (attempt - 1), settings.webhook_backoff_max_s)
    return step * (0.5 + 0.5 * (random.random() if draw is None else draw))


def headers_for(job: Job, claim: WebhookClaim, secret: str, body: bytes, now: float) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Chorus-Event": f"job.{job.state.value}",
        "X-Chorus-Job": job.id,
        "X-Chorus-Delivery": claim.delivery,
        "X-Chorus-Attempt": str(claim.attempt),
        "X-Chorus-Timestamp": str(int(now)),
        "X-Chorus-Signature": sign(secret, body),
    }


def post(destination: Destination, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    """POST to the first checked address of the destination; the answer's status.
    No proxy from the environment (it would connect elsewhere), no redirect, and
    the answer's body is never read."""
    extensions = {"sni_hostname": destination.server_name} if destination.server_name else {}
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        request = client.build_request(
            "POST", destination.pinned_url(destination.addresses[0]), content=body,
            headers={**headers, "Host": destination.host_header}, extensions=extensions,
        )
        response = client.send(request, stream=True)
        response.close()
        return response.status_code


def attempt(claim: WebhookClaim, settings: Settings) -> str:
    """Make one claimed attempt and record its outcome; the outcome."""
    outbox = clients.outbox()
    try:
        job = clients.jobs().get(claim.job_id)
    except JobNotFound:  # forgotten meanwhile: its outbox entry went with it
        return "gone"
    code, error = 0, ""
    try:
        destination = check_webhook_url(job.webhook_url, Policy.of(settings))
    except WebhookRefused as exc:
        outbox.record(claim, "failed", error=f"refused: {exc}"[:ERROR_CHARS])
        log.warning("job %s: webhook refused: %s", job.id, exc)
        return "failed"
    try:
        body = status_document(job, clients.storage()).model_dump_json().encode("utf-8")
        secret = clients.keys().ensure_webhook_secret(job.owner)
        now = time.time()
        code = post(destination, body, headers_for(job, claim, secret, body, now), settings.webhook_timeout_s)
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
             destination.host, outcome, code or error)
    return outcome


@app.task(name=WEBHOOK_TASK, queue=JOBS_QUEUE, ignore_result=True)
def webhook() -> int:
    """Deliver what is due; the number of attempts made."""
    settings, outbox = get_settings(), clients.outbox()
    lease_s = 2 * settings.webhook_timeout_s + LEASE_MARGIN_S
    # No new claim after this: a run lasts about two attempts at most.
    stop_at = time.monotonic() + settings.webhook_timeout_s

    def drain(first: WebhookClaim | None) -> int:
        made, claim = 0, first
        while claim is not None:
            try:
                attempt(claim, settings)
            except redis.RedisError as exc:  # its lease runs out and it is attempted again
                log.warning("job %s: webhook attempt not recorded: %s", claim.job_id, exc)
            made += 1
            claim = outbox.claim(lease_s, settings.webhook_attempts) if time.monotonic() < stop_at else None
        return made

    first = outbox.claim(lease_s, settings.webhook_attempts)
    if first is None:
        return 0
    with ThreadPoolExecutor(THREADS, thread_name_prefix="webhook") as pool:
        runs = [pool.submit(drain, first)]
        runs += [pool.submit(drain, outbox.claim(lease_s, settings.webhook_attempts)) for _ in range(THREADS - 1)]
        return sum(run.result() for run in runs)
