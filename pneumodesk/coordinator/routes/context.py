"""What every route shares, as FastAPI dependencies: the service and its per-app helpers, authentication, limits.

No ``from __future__ import annotations``: FastAPI evaluates the dependencies' annotations.

Invariants: tokens travel only in the Authorization header; every authentication re-reads the account or node (in a
worker thread), so a revocation applies to the very next request; the documented error answers of every route use
the one JSON error schema (``ERRORS``).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import ErrorBody, PlanWait
from pneumodesk.federation.vocabulary import RoundPhase

from ..bodies import BufferPool
from ..config import CoordinatorConfig
from ..errors import Conflict, TooLarge, Unauthorised
from ..http_limits import RateLimiter
from ..service import CoordinatorService
from ..shared_limits import DatabaseRateLimiter

#: The error answers every route documents (FastAPI's own validation error shape is never promised).
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422,
                                                                                    429)}
#: The largest id the databases store in an ``Integer`` column (PostgreSQL's is 32 bits). A larger number in a path
#: or query is invalid input, refused before it reaches the database driver (which would fail with a server error).
MAX_ROW_ID = 2**31 - 1
#: A round's id, or a model's version number, in a path: 1 … ``MAX_ROW_ID``.
RoundId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the round's id")]
ModelVersionNumber = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the model's version number")]
#: Uploads (paths ending in this) get the large-body limit; every other body the JSON limit.
UPLOAD_SUFFIX = "/update"


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


class RateLimited(Exception):
    """A client went over a rate limit; answered 429 with Retry-After (see ``errors``)."""

    def __init__(self, wait: float) -> None:
        super().__init__("rate limited")
        self.wait = wait


@dataclass
class ApiContext:
    """One app's service and helpers (kept in ``app.state.context``)."""

    service: CoordinatorService
    notifier: ChangeNotifier = field(default_factory=ChangeNotifier)
    limits: dict[str, RateLimiter | DatabaseRateLimiter] = field(default_factory=dict)
    update_buffers: BufferPool = field(init=False)
    plan_states: SharedReads = field(init=False)
    #: Password checks (argon2) running at once; a login finding none free is refused, not queued.
    password_checks: asyncio.Semaphore = field(init=False)
    #: Nodes with an upload in progress (this process): one upload per node at a time.
    uploading: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        config = self.service.config
        self.update_buffers = BufferPool(config.idle_upload_buffers_mb * 1024 * 1024)
        self.plan_states = SharedReads(self.service.plan_state)
        self.password_checks = asyncio.Semaphore(config.concurrent_login_checks)
        rates = {"login": config.login_attempts_per_minute, "login_user": config.login_attempts_per_minute,
                 "token": config.token_requests_per_minute, "enrol": config.enrol_attempts_per_minute}
        if not self.limits and self.service.engine.dialect.name == "postgresql":  # possibly several workers
            self.limits = {kind: DatabaseRateLimiter(self.service.sessions, kind, rate) for kind, rate in rates.items()}
        self.limits = self.limits or {kind: RateLimiter(rate) for kind, rate in rates.items()}
        self.service.add_listener(self.notifier.notify_threadsafe)

    @property
    def config(self) -> CoordinatorConfig:
        return self.service.config

    async def limit(self, kind: str, key: str) -> None:
        """Count a hit of ``key`` against limit ``kind``; ``RateLimited`` once over it."""
        limiter = self.limits[kind]
        if isinstance(limiter, DatabaseRateLimiter):
            wait = await run_in_threadpool(limiter.hit, key)
        else:
            wait = limiter.hit(key)  # in memory: no thread hop
        if wait is not None:
            raise RateLimited(wait)

    async def forget(self, kind: str, key: str) -> None:
        """Take back ``key``'s newest hit of limit ``kind`` (the attempt turned out legitimate)."""
        limiter = self.limits[kind]
        if isinstance(limiter, DatabaseRateLimiter):
            await run_in_threadpool(limiter.forget, key)
        else:
            limiter.forget(key)


@contextlib.asynccontextmanager
async def checked_upload(request: Request, context: ApiContext, round_id: int, node_id: str,
                         phase: RoundPhase) -> AsyncIterator[None]:
    """Everything an upload is checked for before its body is read: one upload per node at a time (409), the round,
    phase and roster (``upload_allowance``), and the announced size against what the round's model can need (413)."""
    if node_id in context.uploading:
        raise Conflict("This node is already sending an upload; wait for its answer.")
    context.uploading.add(node_id)
    try:
        limit = await run_in_threadpool(context.service.rounds.upload_allowance, round_id, node_id, phase)
        announced = request.headers.get("content-length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            raise TooLarge(f"The upload is larger than this round's model can need ({limit} bytes).")
        yield
    finally:
        context.uploading.discard(node_id)


def get_context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.context)


def get_service(request: Request) -> CoordinatorService:
    return get_context(request).service


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Context = Annotated[ApiContext, Depends(get_context)]
Service = Annotated[CoordinatorService, Depends(get_service)]
ClientAddress = Annotated[str, Depends(client_address)]

_bearer = HTTPBearer(auto_error=False)
_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorised("This endpoint needs an access token (Authorization: Bearer …).")
    return credentials.credentials


async def _node(service: Service, credentials: _Credentials) -> str:
    return await run_in_threadpool(service.authenticate_node, _token(credentials))


async def _viewer(service: Service, credentials: _Credentials) -> str:
    return await run_in_threadpool(service.authenticate_operator, _token(credentials), "viewer")


async def _operator(service: Service, credentials: _Credentials) -> str:
    return await run_in_threadpool(service.authenticate_operator, _token(credentials), "operator")


async def _anyone_enrolled(service: Service, credentials: _Credentials) -> str:
    return await run_in_threadpool(service.authenticate_any, _token(credentials))


#: The authenticated caller: an approved node's id, an operator's name (viewer or operator role), or either.
NodeId = Annotated[str, Depends(_node)]
Viewer = Annotated[str, Depends(_viewer)]
OperatorName = Annotated[str, Depends(_operator)]
Anyone = Annotated[str, Depends(_anyone_enrolled)]
