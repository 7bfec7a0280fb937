"""The HTTPS API under /api/v1 (FastAPI): thin handlers, one router per area (``routes``), that authenticate,
validate and call the service layer.

Every error leaves as JSON ``{"error": code, "message": sentence}`` — unknown paths, wrong methods, invalid bodies,
oversize bodies and rate limits included (``routes.errors``). Tokens travel only in the Authorization header, never in
URLs or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from pneumodesk import __version__
from pneumodesk.federation.messages import API_PREFIX

from . import secure_api
from .http_limits import BodySizeLimit
from .observability import RequestContext
from .routes import meta, models, nodes, operators, plans, rounds
from .routes.context import UPLOAD_SUFFIX, ApiContext, ChangeNotifier, SharedReads
from .routes.errors import install_error_handlers
from .service import CoordinatorService

__all__ = ["UPLOAD_SUFFIX", "ChangeNotifier", "SharedReads", "app_from_environment", "create_app"]

log = logging.getLogger(__name__)

#: Every router, in the order their routes are listed in the OpenAPI description.
ROUTERS = (
    meta.router,
    operators.router,
    nodes.operator_router,
    plans.operator_router,
    rounds.operator_router,
    models.router,
    nodes.node_router,
    plans.router,
    rounds.router,
    secure_api.router,
)


def create_app(service: CoordinatorService) -> FastAPI:
    context = ApiContext(service)
    config = service.config

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        context.notifier.attach(asyncio.get_running_loop())
        service.start_listening()
        await run_in_threadpool(service.sweep)  # resume rounds left aggregating by a restart

        async def sweeper() -> None:
            while True:
                await asyncio.sleep(config.sweep_seconds)
                try:
                    await run_in_threadpool(service.sweep)
                except Exception:
                    log.exception("Periodic round sweep failed")

        task = asyncio.create_task(sweeper())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await run_in_threadpool(service.stop_listening)

    app = FastAPI(title="PneumoDesk federation coordinator", version=__version__, lifespan=lifespan,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs", redoc_url=None)
    app.state.context = context
    app.add_middleware(BodySizeLimit, limit_for=lambda path: (
        config.max_update_bytes if path.endswith(UPLOAD_SUFFIX) else config.max_json_bytes))
    app.add_middleware(RequestContext, upload_suffix=UPLOAD_SUFFIX)  # outermost: ids and timings cover everything
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(meta.operations_router)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (multi-worker deployments): reads PNEUMODESK_COORDINATOR_DIR and, if set,
    PNEUMODESK_DATABASE_URL."""
    directory = os.environ.get("PNEUMODESK_COORDINATOR_DIR")
    if not directory:
        raise RuntimeError("Set PNEUMODESK_COORDINATOR_DIR to the coordinator folder.")
    return create_app(CoordinatorService.open(Path(directory), os.environ.get("PNEUMODESK_DATABASE_URL") or None))
