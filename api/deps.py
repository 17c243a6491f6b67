"""Dependencies injected into routes, typed with ``Annotated``."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.planner import Planner
from configs import Registry, Settings, get_settings
from tasks import context
from tasks.errors import NotAuthenticated
from tasks.state.fleet import Fleet
from tasks.state.jobs import JobStore
from tasks.state.keys import ApiKey, KeyStore
from tasks.state.storage import Storage
from tasks.state.voices import VoiceBook

SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(context.registry)]
JobsDep = Annotated[JobStore, Depends(context.jobs)]
StorageDep = Annotated[Storage, Depends(context.storage)]
VoicesDep = Annotated[VoiceBook, Depends(context.voices)]
FleetDep = Annotated[Fleet, Depends(context.fleet)]


def planner(request: Request) -> Planner:
    """The API's pool of planner processes, started with the application."""
    return request.app.state.planner


PlannerDep = Annotated[Planner, Depends(planner)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `chorus keys create NAME` makes one")


def authenticate(
    keys: Annotated[KeyStore, Depends(context.keys)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """Every /v1 request carries `Authorization: Bearer <key>`."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("send an API key as 'Authorization: Bearer <key>'")
    key = keys.lookup(credentials.credentials)
    if key is None:
        raise NotAuthenticated("unknown API key")
    return key


CallerDep = Annotated[ApiKey, Depends(authenticate)]
