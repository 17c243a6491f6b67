"""Dependencies injected into routes, typed with ``Annotated``."""

from typing import Annotated

from fastapi import Depends

from configs import Registry, Settings, get_settings
from tasks import context
from tasks.jobs import JobStore
from tasks.storage import Storage

SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[Registry, Depends(context.registry)]
JobsDep = Annotated[JobStore, Depends(context.jobs)]
StorageDep = Annotated[Storage, Depends(context.storage)]
