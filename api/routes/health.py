from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chorus.api.deps import JobsDep, StorageDep
from chorus.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(jobs: JobsDep, storage: StorageDep) -> JSONResponse:
    checks = {}
    for name, probe in (("redis", jobs.redis.ping), ("s3", storage.ping)):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # a health check reports every failure, whatever its type
            checks[name] = f"{type(exc).__name__}: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if healthy else "degraded", **checks}, status_code=200 if healthy else 503)
