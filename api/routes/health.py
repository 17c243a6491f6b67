"""GET /healthz: whether the API reaches Redis and S3, answered as ok or down.

The endpoint is open to anyone (probes carry no key), so it says only which
service is down; what failed and where (addresses, bucket, error text) goes to
the server's log. Each probe has a time bound and neither holds the event loop:
Redis is asked on the asyncio client, S3 in a worker thread that is left behind
when it overruns, so a stalled service answers "down" instead of piling up
health checks in the API's thread pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chorus.api.deps import AsyncRedisDep, StorageDep
from chorus.api.schemas import Health

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0


async def _probe(name: str, probe: Callable[[], Awaitable[object]]) -> str:
    try:
        with anyio.fail_after(PROBE_TIMEOUT_S):
            await probe()
    except Exception as exc:  # a health check reports every failure, whatever its type
        log.warning("health: %s is down: %s: %s", name, type(exc).__name__, str(exc) or f"no answer in {PROBE_TIMEOUT_S:.0f} s")
        return "down"
    return "ok"


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def healthz(client: AsyncRedisDep, storage: StorageDep) -> JSONResponse:
    redis_state, s3_state = await asyncio.gather(
        _probe("redis", client.ping),
        _probe("s3", lambda: anyio.to_thread.run_sync(storage.ping, abandon_on_cancel=True)),
    )
    checks = {"redis": redis_state, "s3": s3_state}
    healthy = all(state == "ok" for state in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)
