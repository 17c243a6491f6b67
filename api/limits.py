"""Request bodies are bounded while they are read, not after.

``BodyLimit`` is plain ASGI middleware. It refuses a body whose declared
``Content-Length`` is over the route's limit before reading any of it, and
counts the bytes of every other body (chunked ones too) as they arrive; the
moment the count passes the limit, the request is over: the application stops
reading (its ``receive`` raises) and the answer is a 413.

A client such as urllib or requests sends its whole body before it reads the
answer. If the server answered and closed while bytes were still coming, the
client would see "connection reset by peer", never the 413. So the rest of an
oversized body is read and thrown away first (nothing is kept), up to a bound:
a client that declares or sends more than ``DRAIN_BYTES`` past the limit, or
takes longer than ``DRAIN_SECONDS``, is cut off. A client that asked ``Expect:
100-continue`` has sent nothing yet and gets its 413 at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from chorus.tasks.errors import TextTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DRAIN_BYTES = 64 * 1024 * 1024  # read at most this much of an oversized body before cutting the client off
DRAIN_SECONDS = 30.0


class BodyTooLarge(TextTooLarge):
    """The request body passed its route's limit while it was being read."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _too_large(limit: int) -> str:
    return f"request body larger than {limit} bytes"


class BodyLimit:
    """Bounds every request body; ``limit_for(method, path)`` gives the bound."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            waits_for_us = (_header(scope, b"expect") or "").lower() == "100-continue"
            if not waits_for_us and int(declared) <= limit + DRAIN_BYTES:
                await _drain(receive, int(declared))
            await _refuse(send, limit)
            return

        received = 0
        exceeded = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    if message.get("more_body"):
                        await _drain(receive, DRAIN_BYTES)
                    raise BodyTooLarge(_too_large(limit))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if exceeded:  # whatever the application made of the error, the answer is 413
                if message["type"] == "http.response.start" and not answered:
                    answered = True
                    await _refuse(send, limit)
                return
            if message["type"] == "http.response.start":
                answered = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except BodyTooLarge:
            if not answered:
                await _refuse(send, limit)


async def _drain(receive: Receive, budget: int) -> None:
    """Read and discard the rest of a body: at most ``budget`` bytes and ``DRAIN_SECONDS``."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while budget > 0 and time.monotonic() < deadline:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": _too_large(limit)}).encode()
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
