"""Dependencies injected into routes, typed with ``Annotated``.

The shared clients are made once per process (``tasks/clients.py``; the API
builds them at start-up), so handing one to a route is a plain ``async``
function: FastAPI runs a sync dependency in a worker thread, and a thread hop
per client per request is what a busy status endpoint cannot afford. Anything
that does I/O (``authenticate``: a Redis lookup) stays sync, off the event loop.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.asyncio import Redis as AsyncRedis

from chorus.api.planner import Planner
from chorus.configs import Registry, Settings, get_settings
from chorus.tasks import clients
from chorus.tasks.errors import NotAuthenticated
from chorus.tasks.state.fleet import Fleet
from chorus.tasks.state.jobs import JobStore
from chorus.tasks.state.keys import ApiKey, KeyStore
from chorus.tasks.state.storage import Storage
from chorus.tasks.state.voices import VoiceBook


async def _settings() -> Settings:
    return get_settings()


async def _registry() -> Registry:
    return clients.registry()


async def _jobs() -> JobStore:
    return clients.jobs()


async def _storage() -> Storage:
    return clients.storage()


async def _voices() -> VoiceBook:
    return clients.voices()


async def _fleet() -> Fleet:
    return clients.fleet()


async def _keys() -> KeyStore:
    return clients.keys()


async def _async_redis() -> AsyncRedis:
    return clients.async_redis()


async def planner(request: Request) -> Planner:
    """The API's pool of planner processes, started with the application."""
    return request.app.state.planner


SettingsDep = Annotated[Settings, Depends(_settings)]
RegistryDep = Annotated[Registry, Depends(_registry)]
JobsDep = Annotated[JobStore, Depends(_jobs)]
StorageDep = Annotated[Storage, Depends(_storage)]
VoicesDep = Annotated[VoiceBook, Depends(_voices)]
FleetDep = Annotated[Fleet, Depends(_fleet)]
AsyncRedisDep = Annotated[AsyncRedis, Depends(_async_redis)]


PlannerDep = Annotated[Planner, Depends(planner)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `chorus keys create NAME` makes one")


async def authenticate(
    keys: Annotated[KeyStore, Depends(_keys)],
    client: AsyncRedisDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """Every /v1 request carries `Authorization: Bearer <key>` (one Redis
    lookup, awaited: no thread per request)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("send an API key as 'Authorization: Bearer <key>'")
    key = await keys.lookup_async(client, credentials.credentials)
    if key is None:
        raise NotAuthenticated("unknown API key")
    return key


CallerDep = Annotated[ApiKey, Depends(authenticate)]
