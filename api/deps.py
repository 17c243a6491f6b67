"""Dependencies injected into routes, typed with ``Annotated``."""

from typing import Annotated

from fastapi import Depends

from configs import Registry, Settings, get_settings
from tasks import context
from tasks.fleet import Fleet
from tasks.jobs import JobStore
from tasks.storage import Storage
from tasks.voices import VoiceBook

SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(context.registry)]
JobsDep = Annotated[JobStore, Depends(context.jobs)]
StorageDep = Annotated[Storage, Depends(context.storage)]
VoicesDep = Annotated[VoiceBook, Depends(context.voices)]
FleetDep = Annotated[Fleet, Depends(context.fleet)]
