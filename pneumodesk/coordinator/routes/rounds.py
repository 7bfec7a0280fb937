"""Rounds: the plan's long poll, joining, a round's status, the operators' list and a node's (plain) update upload.

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations.
"""

import asyncio
from functools import partial
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import (
    API_PREFIX,
    EXAMPLES_HEADER,
    SHA256_HEADER,
    PlanWait,
    RoundInfo,
    UploadReceipt,
)
from pneumodesk.federation.vocabulary import FINISHED, PlanStatus, RoundPhase

from ..bodies import pooled_body
from .context import ERRORS, UPLOAD_SUFFIX, Anyone, Context, NodeId, RoundId, Service, Viewer, checked_upload

operator_router = APIRouter(prefix=API_PREFIX, tags=["operators"], responses=ERRORS)
router = APIRouter(prefix=API_PREFIX, tags=["rounds"], responses=ERRORS)
_BINARY_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}


@operator_router.get("/rounds", response_model=list[RoundInfo])
async def rounds(service: Service, _who: Viewer) -> list[RoundInfo]:
    return await run_in_threadpool(service.all_rounds)


@router.get("/plans/{sha}/wait", response_model=PlanWait)
async def wait(
    sha: str,
    context: Context,
    _who: Anyone,
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
    deadline = loop.time() + min(timeout, context.config.long_poll_max_seconds)
    notifier = context.notifier
    while True:
        seen = notifier.version
        state = await context.plan_states.get(sha, seen)
        current = state.round.revision if state.round else PlanStatus.FINISHED.value
        changed = since is not None and current != since
        if since is None or (changed and (until == "change" or _round_ended(state, since))):
            return state.model_copy(update={"changed": changed})
        remaining = deadline - loop.time()
        if remaining <= 0:
            return state.model_copy(update={"changed": changed})
        # Changes wake us at once (other workers' and the CLI's too on PostgreSQL: LISTEN/NOTIFY); the 2 s re-reads
        # catch what a missed notification or SQLite's other processes change.
        await notifier.wait(seen, min(remaining, 2.0))


@router.post("/plans/{sha}/join", response_model=RoundInfo)
async def join(sha: str, service: Service, who: NodeId) -> RoundInfo:
    return await run_in_threadpool(service.join, sha, who)


@router.get("/rounds/{round_id}", response_model=RoundInfo)
async def round_status(round_id: RoundId, service: Service, _who: Anyone) -> RoundInfo:
    return await run_in_threadpool(service.round_status, round_id)


@router.put(f"/rounds/{{round_id}}{UPLOAD_SUFFIX}", response_model=UploadReceipt, openapi_extra=_BINARY_BODY)
async def upload(
    round_id: RoundId,
    request: Request,
    context: Context,
    who: NodeId,
    examples: Annotated[int, Header(alias=EXAMPLES_HEADER, ge=1, le=1_000_000_000)],
    sha256: Annotated[str, Header(alias=SHA256_HEADER, pattern=r"^[0-9a-fA-F]{64}$")],
) -> UploadReceipt:
    """Upload this node's update (safetensors) with its example count; an identical retry is counted once."""
    async with (checked_upload(request, context, round_id, who, RoundPhase.PLAIN_INPUT),
                pooled_body(request, context.update_buffers) as body):  # the service keeps no view into the body
        return await run_in_threadpool(partial(context.service.submit_update, received_sha256=body.sha256), round_id,
                                       who, body.data, examples, sha256)


def _round_ended(state: PlanWait, since: str) -> bool:
    """Whether the round named by revision ``since`` (``"<round id>:<counter>"``) is over or no longer current.

    ``since`` comes from the client: a round id that is not plain ASCII digits (``str.isdigit`` also accepts "²",
    which ``int`` refuses) names no round, so that round counts as over.
    """
    if state.round is None:
        return True
    round_id = since.split(":", 1)[0]
    named = round_id.isascii() and round_id.isdigit()
    return not named or int(round_id) != state.round.round_id or state.round.state in FINISHED
