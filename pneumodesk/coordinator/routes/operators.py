"""Operator routes: login and the audit log.

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations.
"""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import API_PREFIX, LoginRequest, TokenResponse

from ..audit import AuditEntry
from .context import ERRORS, MAX_ROW_ID, ClientAddress, Context, RateLimited, Viewer

router = APIRouter(prefix=API_PREFIX, tags=["operators"], responses=ERRORS)


@router.post("/operators/login", response_model=TokenResponse)
async def login(body: LoginRequest, context: Context, client: ClientAddress) -> TokenResponse:
    """Every attempt is counted before its password is checked, per client address and per user name (a success
    gives its count back); at most ``concurrent_login_checks`` argon2 checks run at once, an attempt beyond that
    is refused at once (429), so a burst of logins cannot fill the worker threads that serve nodes."""
    await context.limit("login", client)
    try:
        await context.limit("login_user", body.username)
    except RateLimited:
        await context.forget("login", client)
        raise
    checks = context.password_checks
    if checks.locked():
        raise RateLimited(1.0)
    async with checks:  # a failed check raises Unauthorised and keeps both counts
        token = await run_in_threadpool(partial(context.service.login, source=client), body.username, body.password)
    await context.forget("login", client)
    await context.forget("login_user", body.username)
    return token


@router.get("/audit", response_model=list[AuditEntry])
async def audit(
    context: Context,
    _who: Viewer,
    limit: Annotated[int, Query(ge=1, le=10_000, description="the newest entries, at most this many")] = 1000,
    after_id: Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="only entries with a larger id")] = 0,
) -> list[AuditEntry]:
    """The audit log, oldest first: logins, enrolment codes, node decisions, plans, model imports and exports."""
    return await run_in_threadpool(context.service.read_audit, limit, after_id)
