"""The HTTPS API under /api/v1 (FastAPI): thin handlers that authenticate, validate and call the service layer.

No ``from __future__ import annotations`` here: FastAPI must evaluate the handlers' annotations, which name local
dependencies.

Every error leaves as JSON ``{"error": code, "message": sentence}`` — unknown paths, wrong methods, invalid bodies,
oversize bodies and rate limits included. Tokens travel only in the Authorization header, never in URLs or logs.
"""


import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from pneumodesk import __version__
from pneumodesk.federation.errors import FederationError
from pneumodesk.federation.messages import (
    API_PREFIX,
    EXAMPLES_HEADER,
    SHA256_HEADER,
    ChallengeResponse,
    EnrolmentCode,
    EnrolRequest,
    ErrorBody,
    Health,
    LoginRequest,
    ModelVersionInfo,
    NodeInfo,
    PlanSummary,
    PlanWait,
    RoundInfo,
    TokenRequest,
    TokenResponse,
    UploadReceipt,
    VersionInfo,
)

from .audit import AuditEntry
from .bodies import BufferPool, pooled_body
from .errors import CoordinatorError, Unauthorised
from .http_limits import BodySizeLimit, RateLimiter
from .secure_api import register_secure_routes
from .service import CoordinatorService

log = logging.getLogger(__name__)
UPLOAD_SUFFIX = "/update"
_ERRORS = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422, 429)}


class ChangeNotifier:
    """Wakes long polls when the service reports a change; safe to call from any thread."""

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _bump(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    def notify_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._bump)

    async def wait(self, seen: int, timeout: float) -> None:
        if self.version != seen:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)


class SharedReads:
    """One database read per key and change version, shared by every long poll that wakes for that change.

    When an upload wakes 30 waiting nodes, the plan's state is read once, not 30 times. A result is reused only for
    the same notifier version and for at most ``max_age`` seconds, so changes made outside this process (CLI, other
    workers), which do not bump the version, are still seen by the periodic re-reads.
    """

    def __init__(self, read: Callable[[str], PlanWait], max_age: float = 0.25) -> None:
        self._read = read
        self._max_age = max_age
        self._entries: dict[str, tuple[int, float, asyncio.Future[PlanWait]]] = {}

    async def get(self, key: str, version: int) -> PlanWait:
        loop = asyncio.get_running_loop()
        entry = self._entries.get(key)
        if entry is None or entry[0] != version or loop.time() - entry[1] > self._max_age:
            if len(self._entries) > 1000:  # unknown keys must not grow this without bound
                self._entries.clear()
            entry = (version, loop.time(), asyncio.ensure_future(run_in_threadpool(self._read, key)))
            self._entries[key] = entry
        return await asyncio.shield(entry[2])


def _error(status: int, code: str, message: str, details: list | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=code, message=message, details=details).model_dump(exclude_none=True)
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(service: CoordinatorService) -> FastAPI:
    config = service.config
    notifier = ChangeNotifier()
    service.add_listener(notifier.notify_threadsafe)
    plan_states = SharedReads(service.plan_state)
    update_buffers = BufferPool(config.idle_upload_buffers_mb * 1024 * 1024)
    limits = {
        "login": RateLimiter(config.login_attempts_per_minute),
        "token": RateLimiter(config.token_requests_per_minute),
        "enrol": RateLimiter(config.enrol_attempts_per_minute),
    }

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        notifier.attach(asyncio.get_running_loop())
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

    app = FastAPI(title="PneumoDesk federation coordinator", version=__version__, lifespan=lifespan,
                  openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs", redoc_url=None)
    app.add_middleware(BodySizeLimit, limit_for=lambda path: (
        config.max_update_bytes if path.endswith(UPLOAD_SUFFIX) else config.max_json_bytes))

    @app.exception_handler(CoordinatorError)
    async def _coordinator_error(_request: Request, error: CoordinatorError) -> JSONResponse:
        return _error(error.status, error.code, str(error))

    @app.exception_handler(FederationError)
    async def _federation_error(_request: Request, error: FederationError) -> JSONResponse:
        return _error(422, "invalid_input", str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        details = [{"location": ".".join(str(p) for p in item.get("loc", ())), "problem": item.get("msg", "")}
                   for item in error.errors()]
        summary = "; ".join(f"{d['location']}: {d['problem']}" for d in details[:5])
        return _error(422, "invalid_input", f"The request is not valid: {summary}.", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 404:
            return _error(404, "not_found", f"There is no endpoint at {request.url.path}.")
        if error.status_code == 405:
            return _error(405, "method_not_allowed", f"{request.method} is not allowed on {request.url.path}.",
                          headers=dict(error.headers or {}))
        return _error(error.status_code, "http_error", str(error.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.error("Unexpected error: %s", type(error).__name__)
        return _error(500, "internal_error", "The coordinator hit an unexpected error; the operator can see the log.")

    bearer = HTTPBearer(auto_error=False)

    def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
        if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
            raise Unauthorised("This endpoint needs an access token (Authorization: Bearer …).")
        return credentials.credentials

    async def node(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        return await run_in_threadpool(service.authenticate_node, _token(credentials))

    async def viewer(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        return await run_in_threadpool(service.authenticate_operator, _token(credentials), "viewer")

    async def operator(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        return await run_in_threadpool(service.authenticate_operator, _token(credentials), "operator")

    async def anyone_enrolled(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
        return await run_in_threadpool(service.authenticate_any, _token(credentials))

    def limited(kind: str, key: str) -> None:
        wait = limits[kind].hit(key)
        if wait is not None:
            raise _RateLimited(wait)

    @app.exception_handler(_RateLimited)
    async def _rate_limited(_request: Request, error: _RateLimited) -> JSONResponse:
        seconds = max(1, int(error.wait + 0.999))
        return _error(429, "rate_limited", f"Too many attempts; try again in {seconds} s.",
                      headers={"Retry-After": str(seconds)})

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    api = API_PREFIX

    # -- public -------------------------------------------------------------------------------------------------
    @app.get(f"{api}/health", response_model=Health, tags=["service"])
    async def health() -> Health:
        return Health()

    @app.get(f"{api}/version", response_model=VersionInfo, tags=["service"])
    async def version() -> VersionInfo:
        return VersionInfo(software="pneumodesk-coordinator", version=__version__, federation=config.federation_id)

    # -- operators ----------------------------------------------------------------------------------------------
    @app.post(f"{api}/operators/login", response_model=TokenResponse, responses=_ERRORS, tags=["operators"])
    async def login(body: LoginRequest, request: Request) -> TokenResponse:
        """Failed logins are limited per client address; a client over the limit is refused before checking."""
        wait = limits["login"].blocked(client(request))
        if wait is not None:
            raise _RateLimited(wait)
        try:
            return await run_in_threadpool(partial(service.login, source=client(request)), body.username,
                                           body.password)
        except Unauthorised:
            limits["login"].hit(client(request))
            raise

    @app.post(f"{api}/enrolment-codes", response_model=EnrolmentCode, status_code=201, responses=_ERRORS,
              tags=["operators"])
    async def enrolment_code(who: Annotated[str, Depends(operator)]) -> EnrolmentCode:
        return await run_in_threadpool(partial(service.create_enrolment_code, actor=who))

    @app.get(f"{api}/nodes", response_model=list[NodeInfo], responses=_ERRORS, tags=["operators"])
    async def nodes(_who: Annotated[str, Depends(viewer)]) -> list[NodeInfo]:
        return await run_in_threadpool(service.list_nodes)

    @app.post(f"{api}/nodes/{{node_id}}/approve", response_model=NodeInfo, responses=_ERRORS, tags=["operators"])
    async def approve(node_id: str, who: Annotated[str, Depends(operator)]) -> NodeInfo:
        return await run_in_threadpool(partial(service.approve_node, actor=who), node_id)

    @app.post(f"{api}/nodes/{{node_id}}/revoke", response_model=NodeInfo, responses=_ERRORS, tags=["operators"])
    async def revoke(node_id: str, who: Annotated[str, Depends(operator)]) -> NodeInfo:
        return await run_in_threadpool(partial(service.revoke_node, actor=who), node_id)

    @app.post(f"{api}/plans", response_model=PlanSummary, status_code=201, responses=_ERRORS, tags=["operators"])
    async def publish(request: Request, who: Annotated[str, Depends(operator)]) -> PlanSummary:
        return await run_in_threadpool(partial(service.publish_plan, actor=who), await request.body())

    @app.get(f"{api}/rounds", response_model=list[RoundInfo], responses=_ERRORS, tags=["operators"])
    async def rounds(_who: Annotated[str, Depends(viewer)]) -> list[RoundInfo]:
        return await run_in_threadpool(service.all_rounds)

    @app.get(f"{api}/audit", response_model=list[AuditEntry], responses=_ERRORS, tags=["operators"])
    async def audit(
        _who: Annotated[str, Depends(viewer)],
        limit: Annotated[int, Query(ge=1, le=10_000, description="the newest entries, at most this many")] = 1000,
        after_id: Annotated[int, Query(ge=0, description="only entries with a larger id")] = 0,
    ) -> list[AuditEntry]:
        """The audit log, oldest first: logins, enrolment codes, node decisions, plans, model imports and exports."""
        return await run_in_threadpool(service.read_audit, limit, after_id)

    @app.get(f"{api}/models", response_model=list[ModelVersionInfo], responses=_ERRORS, tags=["models"])
    async def models(_who: Annotated[str, Depends(anyone_enrolled)]) -> list[ModelVersionInfo]:
        return await run_in_threadpool(service.list_models)

    # -- nodes --------------------------------------------------------------------------------------------------
    @app.post(f"{api}/nodes/enrol", response_model=NodeInfo, status_code=201, responses=_ERRORS, tags=["nodes"])
    async def enrol(body: EnrolRequest, request: Request) -> NodeInfo:
        limited("enrol", client(request))
        return await run_in_threadpool(service.enrol, body.code, body.name, body.public_key)

    @app.post(f"{api}/nodes/{{node_id}}/challenge", response_model=ChallengeResponse, responses=_ERRORS,
              tags=["nodes"])
    async def challenge(node_id: str, request: Request) -> ChallengeResponse:
        limited("token", f"{client(request)}|{node_id}")
        return await run_in_threadpool(service.new_challenge, node_id)

    @app.post(f"{api}/nodes/{{node_id}}/token", response_model=TokenResponse, responses=_ERRORS, tags=["nodes"])
    async def token(node_id: str, body: TokenRequest, request: Request) -> TokenResponse:
        limited("token", f"{client(request)}|{node_id}")
        return await run_in_threadpool(service.node_token, node_id, body.nonce, body.signature)

    @app.get(f"{api}/plans", response_model=list[PlanSummary], responses=_ERRORS, tags=["plans"])
    async def plans(_who: Annotated[str, Depends(anyone_enrolled)]) -> list[PlanSummary]:
        return await run_in_threadpool(service.list_plans)

    @app.get(f"{api}/plans/{{sha}}", response_model=PlanSummary, responses=_ERRORS, tags=["plans"])
    async def plan(sha: str, _who: Annotated[str, Depends(anyone_enrolled)]) -> PlanSummary:
        return await run_in_threadpool(service.get_plan, sha)

    @app.get(f"{api}/plans/{{sha}}/wait", response_model=PlanWait, responses=_ERRORS, tags=["rounds"])
    async def wait(
        sha: str,
        _who: Annotated[str, Depends(anyone_enrolled)],
        since: Annotated[str | None, Query(max_length=64, description="revision seen last ('finished' at the end)")]
        = None,
        timeout: Annotated[float, Query(ge=0, le=600)] = 30.0,
        until: Annotated[Literal["change", "round_end"], Query(
            description="'change' (default): answer on any change of the round, e.g. another update counted; "
                        "'round_end': only once the round of ``since`` is over (the next round is current, or the "
                        "plan finished) — what a node waiting for a result needs, without waking on every upload")]
        = "change",
    ) -> PlanWait:
        """Long poll: answers as soon as the plan's current round differs from ``since`` (see ``until``), or after
        ``timeout``; ``changed`` says whether it differs from ``since``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(timeout, config.long_poll_max_seconds)
        while True:
            seen = notifier.version
            state = await plan_states.get(sha, seen)
            current = state.round.revision if state.round else "finished"
            changed = since is not None and current != since
            if since is None or (changed and (until == "change" or _round_ended(state, since))):
                return state.model_copy(update={"changed": changed})
            remaining = deadline - loop.time()
            if remaining <= 0:
                return state.model_copy(update={"changed": changed})
            # Changes made by this process wake us at once; 2 s re-reads catch other workers and the CLI.
            await notifier.wait(seen, min(remaining, 2.0))

    @app.post(f"{api}/plans/{{sha}}/join", response_model=RoundInfo, responses=_ERRORS, tags=["rounds"])
    async def join(sha: str, who: Annotated[str, Depends(node)]) -> RoundInfo:
        return await run_in_threadpool(service.join, sha, who)

    @app.get(f"{api}/rounds/{{round_id}}", response_model=RoundInfo, responses=_ERRORS, tags=["rounds"])
    async def round_status(round_id: int, _who: Annotated[str, Depends(anyone_enrolled)]) -> RoundInfo:
        return await run_in_threadpool(service.round_status, round_id)

    @app.get(f"{api}/models/{{version}}/weights", responses={200: {"content": {"application/octet-stream": {}}},
                                                             **_ERRORS}, tags=["models"])
    async def weights(version: int, _who: Annotated[str, Depends(anyone_enrolled)]) -> Response:
        """The model's safetensors bytes; the X-Content-SHA256 header carries their sha256 for the node to check."""
        data, sha = await run_in_threadpool(service.model_weights, version)
        return StreamingResponse(_slices(memoryview(data)), media_type="application/octet-stream",
                                 headers={SHA256_HEADER: sha, "Content-Length": str(len(data))})

    @app.put(
        f"{api}/rounds/{{round_id}}{UPLOAD_SUFFIX}", response_model=UploadReceipt, responses=_ERRORS, tags=["rounds"],
        openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
            "schema": {"type": "string", "format": "binary"}}}}},
    )
    async def upload(
        round_id: int,
        request: Request,
        who: Annotated[str, Depends(node)],
        examples: Annotated[int, Header(alias=EXAMPLES_HEADER, ge=1, le=1_000_000_000)],
        sha256: Annotated[str, Header(alias=SHA256_HEADER, pattern=r"^[0-9a-fA-F]{64}$")],
    ) -> UploadReceipt:
        """Upload this node's update (safetensors) with its example count; an identical retry is counted once."""
        async with pooled_body(request, update_buffers) as body:  # the service keeps no view into the body
            return await run_in_threadpool(partial(service.submit_update, received_sha256=body.sha256), round_id,
                                           who, body.data, examples, sha256)

    register_secure_routes(app, service.secure, node, _ERRORS, update_buffers)
    return app


DOWNLOAD_SLICE = 1 << 20


async def _slices(data: memoryview) -> AsyncIterator[memoryview]:
    """A model in 1 MiB slices: each is encrypted and sent before the next (the send waits while the client is slow),
    so a download holds about a slice of extra memory, not a TLS-encrypted copy of the whole model."""
    for start in range(0, len(data), DOWNLOAD_SLICE):
        yield data[start : start + DOWNLOAD_SLICE]


def _round_ended(state: PlanWait, since: str) -> bool:
    """Whether the round named by revision ``since`` (``"<round id>:<counter>"``) is over or no longer current."""
    if state.round is None:
        return True
    round_id = since.split(":", 1)[0]
    return not round_id.isdigit() or int(round_id) != state.round.round_id or state.round.state in (
        "complete", "failed")


class _RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        super().__init__("rate limited")
        self.wait = wait


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (multi-worker deployments): reads PNEUMODESK_COORDINATOR_DIR and, if set,
    PNEUMODESK_DATABASE_URL."""
    directory = os.environ.get("PNEUMODESK_COORDINATOR_DIR")
    if not directory:
        raise RuntimeError("Set PNEUMODESK_COORDINATOR_DIR to the coordinator folder.")
    return create_app(CoordinatorService.open(Path(directory), os.environ.get("PNEUMODESK_DATABASE_URL") or None))
