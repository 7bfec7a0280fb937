"""Enrolment and node identity: the operator's codes and decisions, and a node's enrolment, challenge and token.

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations. Enrolment and token requests
are rate-limited per client address (and node).
"""

from functools import partial

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import (
    API_PREFIX,
    ChallengeResponse,
    EnrolmentCode,
    EnrolRequest,
    NodeInfo,
    TokenRequest,
    TokenResponse,
)

from .context import ERRORS, ClientAddress, Context, OperatorName, Service, Viewer

#: What operators do (tag "operators").
operator_router = APIRouter(prefix=API_PREFIX, tags=["operators"], responses=ERRORS)
#: What nodes do (tag "nodes").
node_router = APIRouter(prefix=API_PREFIX, tags=["nodes"], responses=ERRORS)


@operator_router.post("/enrolment-codes", response_model=EnrolmentCode, status_code=201)
async def enrolment_code(service: Service, who: OperatorName) -> EnrolmentCode:
    return await run_in_threadpool(partial(service.create_enrolment_code, actor=who))


@operator_router.get("/nodes", response_model=list[NodeInfo])
async def nodes(service: Service, _who: Viewer) -> list[NodeInfo]:
    return await run_in_threadpool(service.list_nodes)


@operator_router.post("/nodes/{node_id}/approve", response_model=NodeInfo)
async def approve(node_id: str, service: Service, who: OperatorName) -> NodeInfo:
    return await run_in_threadpool(partial(service.approve_node, actor=who), node_id)


@operator_router.post("/nodes/{node_id}/revoke", response_model=NodeInfo)
async def revoke(node_id: str, service: Service, who: OperatorName) -> NodeInfo:
    return await run_in_threadpool(partial(service.revoke_node, actor=who), node_id)


@node_router.post("/nodes/enrol", response_model=NodeInfo, status_code=201)
async def enrol(body: EnrolRequest, context: Context, client: ClientAddress) -> NodeInfo:
    await context.limit("enrol", client)
    return await run_in_threadpool(context.service.enrol, body.code, body.name, body.public_key)


@node_router.post("/nodes/{node_id}/challenge", response_model=ChallengeResponse)
async def challenge(node_id: str, context: Context, client: ClientAddress) -> ChallengeResponse:
    await context.limit("token", f"{client}|{node_id}")
    return await run_in_threadpool(context.service.new_challenge, node_id)


@node_router.post("/nodes/{node_id}/token", response_model=TokenResponse)
async def token(node_id: str, body: TokenRequest, context: Context, client: ClientAddress) -> TokenResponse:
    await context.limit("token", f"{client}|{node_id}")
    return await run_in_threadpool(context.service.node_token, node_id, body.nonce, body.signature)
