"""Global model versions: the list and each version's weights (operators and enrolled nodes).

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations.
"""

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import API_PREFIX, SHA256_HEADER, ModelVersionInfo

from .context import ERRORS, Anyone, ModelVersionNumber, Service

router = APIRouter(prefix=API_PREFIX, tags=["models"], responses=ERRORS)
DOWNLOAD_SLICE = 1 << 20


@router.get("/models", response_model=list[ModelVersionInfo])
async def models(service: Service, _who: Anyone) -> list[ModelVersionInfo]:
    return await run_in_threadpool(service.list_models)


@router.get("/models/{version}/weights", responses={200: {"content": {"application/octet-stream": {}}}})
async def weights(version: ModelVersionNumber, service: Service, _who: Anyone) -> Response:
    """The model's safetensors bytes; the X-Content-SHA256 header carries their sha256 for the node to check."""
    data, sha = await run_in_threadpool(service.model_weights, version)
    return StreamingResponse(_slices(memoryview(data)), media_type="application/octet-stream",
                             headers={SHA256_HEADER: sha, "Content-Length": str(len(data))})


async def _slices(data: memoryview) -> AsyncIterator[memoryview]:
    """A model in 1 MiB slices: each is encrypted and sent before the next (the send waits while the client is slow),
    so a download holds about a slice of extra memory, not a TLS-encrypted copy of the whole model."""
    for start in range(0, len(data), DOWNLOAD_SLICE):
        yield data[start : start + DOWNLOAD_SLICE]
