"""Public routes about the service itself: health and version (no token needed), and the operations endpoints
(liveness, readiness, Prometheus metrics)."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from pneumodesk import __version__
from pneumodesk.federation.messages import API_PREFIX, Health, VersionInfo

from ..metrics import CONTENT_TYPE_LATEST, render
from .context import Context

router = APIRouter(prefix=API_PREFIX, tags=["service"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    return Health()


@router.get("/version", response_model=VersionInfo)
async def version(context: Context) -> VersionInfo:
    return VersionInfo(software="pneumodesk-coordinator", version=__version__, federation=context.config.federation_id)


#: Operations endpoints at the root, outside the API (not in its OpenAPI description): for probes and scrapers.
operations_router = APIRouter(include_in_schema=False)


@operations_router.get("/healthz")
async def healthz() -> Health:
    """Liveness: the process answers (it does not touch the database)."""
    return Health()


@operations_router.get("/readyz")
async def readyz(context: Context) -> Response:
    """Readiness: the database answers a query; 503 while it does not (a load balancer sends no traffic here)."""
    if await run_in_threadpool(context.service.database_ready):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "message": "The database does not answer."}, status_code=503)


@operations_router.get("/metrics")
async def metrics(context: Context) -> Response:
    """Prometheus text exposition (all workers' counters, rounds and nodes from the database)."""
    body = await run_in_threadpool(render, context.service.sessions)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
