"""Public routes about the service itself: health and version (no token needed)."""

from fastapi import APIRouter

from pneumodesk import __version__
from pneumodesk.federation.messages import API_PREFIX, Health, VersionInfo

from .context import Context

router = APIRouter(prefix=API_PREFIX, tags=["service"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    return Health()


@router.get("/version", response_model=VersionInfo)
async def version(context: Context) -> VersionInfo:
    return VersionInfo(software="pneumodesk-coordinator", version=__version__, federation=context.config.federation_id)
