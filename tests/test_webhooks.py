"""Signed webhooks.

Fast: the URL rules (schemes, credentials, numeric hosts, IPv4 and IPv6
non-public ranges, names that resolve to loopback, the allow-list), the
signature, the backoff, and the outbox in a real, flushed Redis (due once per
ending, claimed by one deliverer, stale outcomes refused, dropped on resume
and forget, failed when its deliverer keeps dying).

Against the real stack, with a real HTTP receiver on loopback (the test stack
allows 127.0.0.1): a done, a failed and a cancelled job each deliver once,
signed with the key's secret; a receiver answering 500 then 200 gets a second
attempt, recorded in the status; a private URL is refused with 422 and records
no job; rotating the secret changes the signing key; the CLI shows and rotates
secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import redis

from chorus.configs import Settings
from chorus.tasks.destinations import Policy, Rule, check_webhook_url, non_public
from chorus.tasks.errors import WebhookRefused
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.keys import SECRET_PREFIX, KeyStore
from chorus.tasks.state.outbox import Outbox
from chorus.tasks.webhooks import AttemptTimedOut, backoff_s, post, sign
from tests.conftest import submit, wait_for

pytest_plugins = ["tests.fresh_redis"]  # its fixtures: redis_server, r

# -- the URL rules ----------------------------------------------------------------

NAMES = {
    "hooks.example.com": ["93.184.216.34"],
    "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "sneaky.example.com": ["127.0.0.1"],
    "sneaky6.example.com": ["::1"],
    "mixed.example.com": ["93.184.216.34", "10.0.0.7"],
    "internal.corp": ["10.1.2.3"],
    "localhost": ["127.0.0.1", "::1"],
}


def resolve(host: str, port: int) -> list[str]:
    try:
        return NAMES[host]
    except KeyError:
        raise OSError(f"unknown host {host}") from None


def policy(*allow: str, private: bool = False, max_chars: int = 2048) -> Policy:
    return Policy(tuple(Rule.parse(entry) for entry in allow), private, max_chars)


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/chorus?token=abc",
    "http://hooks.example.com:8080/",
    "https://v6.example.com/hook",
    "https://93.184.216.34/hook",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    "HTTPS://Hooks.Example.COM/x",
])
def test_public_urls_pass(url: str) -> None:
    assert check_webhook_url(url, policy(), resolve).addresses


@pytest.mark.parametrize("url, why", [
    ("ftp://hooks.example.com/", "http or https"),
    ("file:///etc/passwd", "http or https"),
    ("javascript:alert(1)", "http or https"),
    ("//hooks.example.com/x", "http or https"),
    ("http://user:pass@hooks.example.com/", "user name or password"),
    ("http://user@hooks.example.com/", "user name or password"),
    ("http://hooks.example.com/ä", "characters"),
    ("http://hooks.example.com/a b", "characters"),
    ("http://hooks.example.com\\@10.0.0.1/", "characters"),
    ("http://hooks.example.com:0/", "port 0"),
    ("http://hooks.example.com:70000/", "cannot be parsed"),
    ("http://[::1/", "cannot be parsed"),
    ("http:///path", "no host"),
    ("http://hooks.example.com/a/../admin", "path segments"),
    ("http://hooks.example.com/a/%2e%2e/admin", "path segments"),
    ("http://nowhere.example.com/", "does not resolve"),
    ("http://127.1/", "plain IP address"),
    ("http://2130706433/", "plain IP address"),
    ("http://0x7f000001/", "plain IP address"),
    ("http://under_score.example.com/", "not a host name"),
    # IPv4 ranges
    ("http://127.0.0.1/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://240.0.0.1/", "reserved"),
    ("http://100.64.0.1/", "non-public"),
    ("http://192.0.2.1/", "private"),
    # IPv6 ranges, and IPv4 inside IPv6
    ("http://[::1]/", "loopback"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fc00::1]/", "private"),
    ("http://[ff02::1]/", "multicast"),
    ("http://[::]/", "unspecified"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:10.0.0.1]/", "private"),
    ("http://[64:ff9b::a00:1]/", "private"),  # NAT64 of 10.0.0.1
    ("http://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
    ("http://[fe80::1%25eth0]/", "not a host name"),
    # names that resolve to what may not be called
    ("http://sneaky.example.com/", "resolves to 127.0.0.1"),
    ("http://sneaky6.example.com/", "resolves to ::1"),
    ("http://mixed.example.com/", "resolves to 10.0.0.7"),
    ("http://localhost:8000/", "loopback"),
])
def test_refused_urls(url: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why.replace("(", r"\(").replace(".", r"\.")):
        check_webhook_url(url, policy(), resolve)


def test_url_length_is_bounded() -> None:
    url = "https://hooks.example.com/" + "a" * 100
    assert check_webhook_url(url, policy(max_chars=len(url)), resolve)
    with pytest.raises(WebhookRefused, match="longer than"):
        check_webhook_url(url + "a", policy(max_chars=len(url)), resolve)


def test_allow_list() -> None:
    rules = policy("hooks.example.com", "*.corp", "https://sneaky.example.com/chorus/", "10.0.0.0/8", "localhost")
    assert check_webhook_url("https://hooks.example.com/any/path", rules, resolve)
    assert check_webhook_url("http://localhost:9000/hook", rules, resolve)  # named exactly: loopback allowed
    assert check_webhook_url("https://sneaky.example.com/chorus/a", rules, resolve)  # a prefix names its host exactly
    assert check_webhook_url("https://sneaky.example.com/chorus", rules, resolve)
    assert check_webhook_url("http://10.9.8.7/", rules, resolve)  # inside a network entry
    assert check_webhook_url("http://internal.corp/", rules, resolve)  # wildcard, and 10.1.2.3 is inside the network
    for url, why in [
        ("https://v6.example.com/", "allow-list"),  # not listed
        ("https://sneaky.example.com/chorusx", "allow-list"),  # beside the prefix, not below it
        ("http://sneaky.example.com/chorus/a", "allow-list"),  # another scheme
        ("https://sneaky.example.com:8443/chorus/a", "allow-list"),  # another port
        ("http://192.168.0.1/", "allow-list"),
    ]:
        with pytest.raises(WebhookRefused, match=why):
            check_webhook_url(url, rules, resolve)


def test_a_wildcard_never_lets_a_private_address_through() -> None:
    rules = policy("*.example.com")
    assert check_webhook_url("https://hooks.example.com/", rules, resolve)
    with pytest.raises(WebhookRefused, match="loopback"):
        check_webhook_url("https://sneaky.example.com/", rules, resolve)
    assert check_webhook_url("https://sneaky.example.com/", policy("*.example.com", private=True), resolve)


def test_allow_private() -> None:
    assert check_webhook_url("http://10.0.0.1/", policy(private=True), resolve)
    assert check_webhook_url("http://localhost/", policy(private=True), resolve)
    with pytest.raises(WebhookRefused):  # the other rules still hold
        check_webhook_url("ftp://10.0.0.1/", policy(private=True), resolve)


def test_public_addresses() -> None:
    for address in ("8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "2002:808:808::"):
        assert non_public(ipaddress.ip_address(address)) is None, address


def test_delivery_goes_to_the_checked_address() -> None:
    destination = check_webhook_url("https://hooks.example.com:8443/in?x=1", policy(), resolve)
    assert destination.pinned_url(destination.addresses[0]) == "https://93.184.216.34:8443/in?x=1"
    assert destination.host_header == "hooks.example.com:8443"
    assert destination.server_name == "hooks.example.com"
    literal = check_webhook_url("http://[2606:2800:220:1:248:1893:25c8:1946]/", policy(), resolve)
    assert literal.pinned_url(literal.addresses[0]) == "http://[2606:2800:220:1:248:1893:25c8:1946]:80/"
    assert literal.server_name is None and literal.host_header == "[2606:2800:220:1:248:1893:25c8:1946]"


def test_malformed_allow_list_entries() -> None:
    for entry in ("https://user@host/", "bad host", "*.", "https://h/?q=1"):
        with pytest.raises(ValueError):
            Rule.parse(entry)


def test_allow_list_setting() -> None:
    assert Settings(webhook_allow="a.example.com, *.b.example.com 10.0.0.0/8").webhook_allow == [
        "a.example.com", "*.b.example.com", "10.0.0.0/8"]
    assert Settings(webhook_allow='["a.example.com"]').webhook_allow == ["a.example.com"]
    assert Settings().webhook_allow == [] and not Settings().webhook_allow_private


DOCS = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def receiver_check() -> Callable[..., bool]:
    """The receiver's check as docs/integrations.md shows it, run as written."""
    text = DOCS.read_text()
    section = text[text.index("### Checking the signature on the receiver"):]
    code = section[section.index("```python") + len("```python"):]
    namespace: dict[str, object] = {}
    exec(code[:code.index("```")], namespace)  # noqa: S102 - our own documentation
    return namespace["verified"]  # type: ignore[return-value]


def test_signature_and_backoff() -> None:
    body = b'{"id": "x"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", body, 1700000000) == f"t=1700000000,v1={expected}"
    settings = Settings(webhook_backoff_s=30, webhook_backoff_max_s=3600)
    assert [backoff_s(n, settings, draw=1.0) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    assert backoff_s(1, settings, draw=0.0) == 15
    assert all(15 <= backoff_s(1, settings) <= 30 for _ in range(100))


def test_the_documented_check_refuses_replays() -> None:
    verified = receiver_check()
    body, secret, sent = b'{"id": "j1", "state": "done"}', "whsec_k", 1_700_000_000
    header = sign(secret, body, sent)
    assert verified(body, header, secret, now=sent + 5)
    assert not verified(body, header, secret + "x", now=sent + 5)  # another secret
    assert not verified(body + b" ", header, secret, now=sent + 5)  # another body
    # Replayed later: stale.
    assert not verified(body, header, secret, now=sent + 301)
    # Replayed with a fresh timestamp put in front of the old HMAC: the HMAC covers t.
    forged = header.replace(f"t={sent}", f"t={sent + 600}")
    assert not verified(body, forged, secret, now=sent + 600)
    assert not verified(body, "v1=" + header.split("v1=")[1], secret, now=sent)  # no t at all
    assert not verified(body, "garbage", secret, now=sent)


class Trickler:
    """A receiver on loopback that answers "HTTP/1.1 200 OK\r\n" at once, then
    one byte every ``every_s`` seconds for ``bytes_`` bytes: each read comes in
    time, the answer never ends."""

    def __init__(self, every_s: float, bytes_: int) -> None:
        self.every_s, self.bytes_ = every_s, bytes_
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/slow"
        self.accepted = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\n")
                for _ in range(self.bytes_):
                    time.sleep(self.every_s)
                    connection.sendall(b"X")
            except OSError:
                pass

    def close(self) -> None:
        self.server.close()


def test_a_trickling_receiver_is_cut_off_at_the_deadline() -> None:
    receiver = Trickler(every_s=0.5, bytes_=40)  # 20 s of answer, never 0.5 s without a byte
    policy = Policy((Rule.parse("127.0.0.1"),), allow_private=False, max_url_chars=2048)
    try:
        started = time.monotonic()
        with pytest.raises(AttemptTimedOut):
            post(receiver.url, policy, b"{}", {"Content-Type": "application/json"}, timeout_s=2.0)
        took = time.monotonic() - started
    finally:
        receiver.close()
    assert receiver.accepted == 1
    assert took < 3.0, f"the attempt took {took:.1f} s, its deadline was 2 s"


# -- the outbox, in a real Redis --------------------------------------------------

HOOK = "https://hooks.example.com/in"


@pytest.fixture
def store(r: redis.Redis) -> JobStore:
    return JobStore(r, ttl_s=3600, queued_deadline_s=600)


@pytest.fixture
def outbox(r: redis.Redis) -> Outbox:
    return Outbox(r)


def hooked_job(store: JobStore, url: str = HOOK) -> str:
    return store.create("tone", "wav", "T", owner="alice", segments_total=2, webhook_url=url).id


def test_an_ending_makes_the_webhook_due_once(store: JobStore, outbox: Outbox) -> None:
    plain, hooked = hooked_job(store, url=""), hooked_job(store)
    assert outbox.due() == {}
    assert store.fail(plain, "broken") and store.fail(hooked, "broken")
    assert list(outbox.due()) == [hooked]
    job = store.get(hooked)
    assert (job.webhook_state, job.webhook_delivery, job.webhook_attempts) == ("pending", f"{hooked}.0", 0)
    assert not store.cancel(hooked)  # already ended: no second ending, nothing due again
    assert store.get(hooked).webhook_delivery == f"{hooked}.0" and len(outbox.due()) == 1
    assert store.get(plain).webhook_state == ""


def test_one_deliverer_per_attempt(store: JobStore, outbox: Outbox) -> None:
    job_id = hooked_job(store)
    store.cancel(job_id)
    barrier, claims = threading.Barrier(8), []

    def claim() -> None:
        barrier.wait()
        claims.append(outbox.claim(lease_s=60, max_attempts=3))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [c for c in claims if c is not None]
    assert len(won) == 1 and (won[0].job_id, won[0].attempt) == (job_id, 1)
    # Held for its lease; due again once the lease is over (its deliverer died).
    assert outbox.claim(lease_s=60, max_attempts=3) is None
    later = outbox.claim(lease_s=60, max_attempts=3, now=time.time() + 61)
    assert later is not None and later.attempt == 2
    assert not outbox.record(won[0], "delivered", code=200)  # attempt 1's outcome comes too late
    assert outbox.record(later, "retry", code=500, error="HTTP 500", next_at=time.time() + 5)
    job = store.get(job_id)
    assert (job.webhook_state, job.webhook_attempts, job.webhook_code) == ("pending", 2, 500)
    assert outbox.claim(lease_s=60, max_attempts=3) is None  # not due for 5 s
    third = outbox.claim(lease_s=60, max_attempts=3, now=time.time() + 6)
    assert third is not None and outbox.record(third, "delivered", code=204)
    job = store.get(job_id)
    assert (job.webhook_state, job.webhook_attempts, job.webhook_code) == ("delivered", 3, 204)
    assert job.webhook_delivered_at and outbox.due() == {}


def test_a_deliverer_that_keeps_dying_uses_up_the_attempts(store: JobStore, outbox: Outbox) -> None:
    job_id = hooked_job(store)
    store.cancel(job_id)
    now = time.time()
    for attempt in (1, 2):
        assert outbox.claim(lease_s=10, max_attempts=2, now=now + 11 * attempt).attempt == attempt
    assert outbox.claim(lease_s=10, max_attempts=2, now=now + 40) is None
    job = store.get(job_id)
    assert job.webhook_state == "failed" and "never reported back" in job.webhook_error
    assert outbox.due() == {}


def test_resume_and_forget_drop_what_is_due(store: JobStore, outbox: Outbox) -> None:
    resumed, forgotten = hooked_job(store), hooked_job(store)
    store.fail(resumed, "broken")
    store.fail(forgotten, "broken")
    assert store.resume(resumed)
    assert list(outbox.due()) == [forgotten] and store.get(resumed).webhook_state == ""
    assert store.remove(forgotten)
    assert outbox.due() == {}
    store.cancel(resumed)  # its next ending is due, under its new run
    assert store.get(resumed).webhook_delivery == f"{resumed}.1" and list(outbox.due()) == [resumed]


def test_a_gone_job_is_dropped_from_the_outbox(store: JobStore, outbox: Outbox) -> None:
    job_id = hooked_job(store)
    store.cancel(job_id)
    store.redis.delete(store._key(job_id))  # its record expired
    assert outbox.claim(lease_s=60, max_attempts=3) is None and outbox.due() == {}


def test_webhook_secrets(r: redis.Redis) -> None:
    keys = KeyStore(r)
    _, record = keys.create("hooks", 1000, 10, 1)
    first = keys.webhook_secret(record.id)
    assert first and first.startswith(SECRET_PREFIX)
    assert keys.ensure_webhook_secret(record.id) == first
    rotated = keys.rotate_webhook_secret(record.id)
    assert rotated != first and keys.webhook_secret(record.id) == rotated
    assert first not in r.hget(KeyStore.KEY, next(iter(r.hkeys(KeyStore.KEY)))).decode()  # not in the key record
    assert keys.find(record.id) == record and keys.find("0" * 16) is None


# -- against the real stack -------------------------------------------------------


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def document(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on loopback that records every POST; a path's answers
    are scripted (``answers[path]``: status codes in turn, then 200)."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, path: str) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if d.path == path]

    def wait(self, path: str, count: int, timeout: float = 60) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        while len(self.to(path)) < count:
            assert time.monotonic() < deadline, f"{len(self.to(path))} deliveries to {path}, not {count}"
            time.sleep(0.1)
        return self.to(path)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with state.lock:
                state.deliveries.append(Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                scripted = state.answers.get(self.path, [])
                code = scripted.pop(0) if scripted else 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def verified(delivery: Delivery, secret: str) -> bool:
    """The receiver's check of docs/integrations.md; the header's t is the attempt's."""
    header = delivery.headers["x-chorus-signature"]
    assert header.startswith(f"t={delivery.headers['x-chorus-timestamp']},v1=")
    return receiver_check()(delivery.body, header, secret)


@pytest.fixture
def secret(stack: dict[str, str], jobs: JobStore, owner: str) -> str:
    """The webhook secret of the stack's own key (the `api` client's) as it is
    now: `chorus env` shows the one it had at start, and other tests (the
    schema's) may have rotated it since."""
    assert stack["CHORUS_WEBHOOK_SECRET"].startswith(SECRET_PREFIX)
    current = KeyStore(jobs.redis).webhook_secret(owner)
    assert current is not None
    return current


def settled_webhook(api: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        hook = api.get(f"/v1/jobs/{job_id}").json()["webhook"]
        if hook["state"] in ("delivered", "failed"):
            return hook
        assert time.monotonic() < deadline, hook
        time.sleep(0.1)


def unsigned(url: str) -> tuple[str, list[tuple[str, str]]]:
    """A presigned URL without its signature, date and credential."""
    parts = urlsplit(url)
    return parts._replace(query="").geturl(), [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("X-Amz-")]


@pytest.mark.stack
def test_a_done_job_delivers_once_signed(api: httpx.Client, secret: str, receiver: Receiver) -> None:
    url = f"{receiver.url}/done"
    job_id = submit(api, "A short book about bells.", voice="tone", format="wav", webhook_url=url)
    status = wait_for(api, job_id)
    assert status["state"] == "done" and status["webhook"]["url"] == url
    hook = settled_webhook(api, job_id)
    assert hook["state"] == "delivered" and hook["attempts"] == 1 and hook["last_status_code"] == 200
    time.sleep(2)  # several more runs of the delivery task: none sends it again
    [delivery] = receiver.to("/done")
    assert verified(delivery, secret) and not verified(delivery, secret + "x")
    headers, document = delivery.headers, delivery.document
    assert headers["content-type"] == "application/json"
    assert headers["x-chorus-event"] == "job.done" and headers["x-chorus-job"] == job_id
    assert headers["x-chorus-delivery"] == f"{job_id}.0" and headers["x-chorus-attempt"] == "1"
    assert abs(int(headers["x-chorus-timestamp"]) - time.time()) < 120
    # The status document, as GET answers it.
    assert document["id"] == job_id and document["state"] == "done"
    # The worker signs its own URL, maybe in another second than the API did:
    # the same object and download name, and it fetches the audiobook.
    answered = api.get(f"/v1/jobs/{job_id}").json()["result_url"]
    assert document["result_url"] and unsigned(document["result_url"]) == unsigned(answered)
    assert httpx.get(document["result_url"], timeout=30).status_code == 200
    assert document["webhook"]["delivery"] == f"{job_id}.0" and document["webhook"]["attempts"] == 1
    assert secret not in delivery.body.decode()


@pytest.mark.stack
def test_failed_and_cancelled_jobs_deliver(api: httpx.Client, secret: str, receiver: Receiver) -> None:
    failed = submit(api, "This sentence goes kaboom.", voice="tone", webhook_url=f"{receiver.url}/failed")
    text = "\n\n".join(f"Paragraph {n} is slow, dawdle dawdle." for n in range(6))
    cancelled = submit(api, text, voice="tone", webhook_url=f"{receiver.url}/cancelled")
    assert api.delete(f"/v1/jobs/{cancelled}").json()["state"] == "cancelled"
    assert wait_for(api, failed)["state"] == "failed"
    for job_id, path, event in ((failed, "/failed", "job.failed"), (cancelled, "/cancelled", "job.cancelled")):
        assert settled_webhook(api, job_id)["state"] == "delivered"
        [delivery] = receiver.wait(path, 1)
        assert delivery.headers["x-chorus-event"] == event and verified(delivery, secret)
        assert delivery.document["state"] == event.removeprefix("job.") and delivery.document["error"]


@pytest.mark.stack
def test_a_failing_receiver_gets_retries(api: httpx.Client, secret: str, receiver: Receiver) -> None:
    receiver.answers["/flaky"] = [500, 503]
    job_id = submit(api, "A book for a moody receiver.", voice="tone", format="wav",
                    webhook_url=f"{receiver.url}/flaky")
    assert wait_for(api, job_id)["state"] == "done"
    hook = settled_webhook(api, job_id)
    assert hook["state"] == "delivered" and hook["attempts"] == 3 and hook["last_status_code"] == 200
    deliveries = receiver.to("/flaky")
    assert [d.headers["x-chorus-attempt"] for d in deliveries] == ["1", "2", "3"]
    assert {d.headers["x-chorus-delivery"] for d in deliveries} == {f"{job_id}.0"}
    assert all(verified(d, secret) for d in deliveries)
    # Each body tells its own attempt (signed).
    assert [d.document["webhook"]["attempts"] for d in deliveries] == [1, 2, 3]
    assert deliveries[1].document["webhook"]["last_status_code"] == 500


@pytest.mark.stack
def test_a_receiver_that_never_answers_2xx_fails_in_the_end(api: httpx.Client, settings: Settings,
                                                           receiver: Receiver) -> None:
    receiver.answers["/down"] = [500] * settings.webhook_attempts
    job_id = submit(api, "A book nobody hears of.", voice="tone", format="wav", webhook_url=f"{receiver.url}/down")
    assert wait_for(api, job_id)["state"] == "done"
    hook = settled_webhook(api, job_id, timeout=120)
    assert hook["state"] == "failed" and hook["attempts"] == settings.webhook_attempts
    assert hook["last_status_code"] == 500 and hook["last_error"] == "HTTP 500"
    assert len(receiver.to("/down")) == settings.webhook_attempts


def job_count(jobs: JobStore) -> int:
    return int(jobs.redis.zcard(JobStore.EXPIRY))


@pytest.mark.stack
@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hook", "http://[::1]/hook", "http://169.254.169.254/", "http://127.0.0.2/hook",
    "http://[::ffff:192.168.0.1]/",
    "ftp://127.0.0.1/", "http://user:pw@127.0.0.1/", "http://127.0.0.1/" + "x" * 3000,
])
def test_a_url_not_allowed_is_refused_and_records_no_job(api: httpx.Client, jobs: JobStore, url: str) -> None:
    before = job_count(jobs)
    response = api.post("/v1/jobs", json={"text": "Never read.", "voice": "tone", "webhook_url": url})
    assert response.status_code == 422, response.text
    assert "webhook" in response.json()["detail"]
    upload = api.post("/v1/jobs", files={"file": ("a.txt", b"Never read.", "text/plain")},
                      data={"voice": "tone", "webhook_url": url})
    assert upload.status_code == 422, upload.text
    assert job_count(jobs) == before


@pytest.mark.stack
def test_an_upload_carries_its_webhook(api: httpx.Client, receiver: Receiver) -> None:
    url = f"{receiver.url}/upload"
    response = api.post("/v1/jobs", files={"file": ("b.txt", b"An uploaded book.", "text/plain")},
                        data={"voice": "tone", "format": "wav", "webhook_url": url})
    assert response.status_code == 202, response.text
    assert settled_webhook(api, response.json()["id"])["state"] == "delivered"
    assert receiver.wait("/upload", 1)[0].document["id"] == response.json()["id"]


@pytest.mark.stack
def test_rotating_the_secret_changes_the_signing_key(stack: dict[str, str], jobs: JobStore, receiver: Receiver) -> None:
    keys = KeyStore(jobs.redis)
    key, record = keys.create("webhook-rotation", 10_000, 100, 2)
    original = keys.webhook_secret(record.id)
    with httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        first = submit(api, "Signed with the first secret.", voice="tone", format="wav",
                       webhook_url=f"{receiver.url}/before")
        assert settled_webhook(api, first)["state"] == "delivered"
        rotated = api.post("/v1/webhook-secret")
        assert rotated.status_code == 200
        secret = rotated.json()["secret"]
        assert rotated.json()["key_id"] == record.id and secret.startswith(SECRET_PREFIX) and secret != original
        second = submit(api, "Signed with the second secret.", voice="tone", format="wav",
                        webhook_url=f"{receiver.url}/after")
        assert settled_webhook(api, second)["state"] == "delivered"
        assert secret not in json.dumps(api.get(f"/v1/jobs/{second}").json())
    [before], [after] = receiver.wait("/before", 1), receiver.wait("/after", 1)
    assert verified(before, original) and not verified(before, secret)
    assert verified(after, secret) and not verified(after, original)


@pytest.mark.stack
def test_a_key_without_a_secret_must_make_one_first(stack: dict[str, str], jobs: JobStore, receiver: Receiver) -> None:
    keys = KeyStore(jobs.redis)
    key, record = keys.create("webhook-legacy", 10_000, 100, 2)
    jobs.redis.hdel(KeyStore.WEBHOOK_SECRETS, record.id)  # as a key made before webhooks
    with httpx.Client(base_url=stack["CHORUS_API_URL"], headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
        refused = api.post("/v1/jobs", json={"text": "Hi.", "voice": "tone", "webhook_url": f"{receiver.url}/x"})
        assert refused.status_code == 422 and "/v1/webhook-secret" in refused.json()["detail"]
        assert api.post("/v1/webhook-secret").status_code == 200
        assert submit(api, "Hi.", voice="tone", webhook_url=f"{receiver.url}/legacy")


@pytest.mark.stack
def test_cli_shows_and_rotates_secrets(stack: dict[str, str], jobs: JobStore) -> None:
    env = {**os.environ, **stack}

    def chorus(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "chorus.cli", *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    created = chorus("keys", "create", "cli-webhooks").splitlines()
    key_id = created[0].split("(id ")[1].split(")")[0]
    secret = created[-1]
    assert secret.startswith(SECRET_PREFIX) and KeyStore(jobs.redis).webhook_secret(key_id) == secret
    rotated = chorus("keys", "rotate-secret", key_id).splitlines()[-1]
    assert rotated.startswith(SECRET_PREFIX) and rotated != secret
    assert KeyStore(jobs.redis).webhook_secret(key_id) == rotated
    assert secret not in chorus("keys", "list") and rotated not in chorus("keys", "list")
