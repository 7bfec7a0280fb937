"""HTTPS routes of secure aggregation (see ``pneumodesk.federation.secagg.wire`` for the list); node tokens only.

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations. Bodies are read raw and
validated by the secure-aggregation models themselves (their bytes travel as base64 in JSON), and the masked input
path ends in ``/update`` so the API's large-body limit applies to it; every other body has the JSON limit.
"""

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import API_PREFIX, SHA256_HEADER
from pneumodesk.federation.secagg.wire import SecureReceipt, SecureRoster
from pneumodesk.federation.vocabulary import RoundPhase

from .bodies import pooled_body, receive_body
from .routes.context import ERRORS, UPLOAD_SUFFIX, Context, NodeId, RoundId, checked_upload, get_service
from .secure_rounds import SecureRounds
from .service import CoordinatorService

_JSON = "application/json"
_BINARY_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}

router = APIRouter(prefix=f"{API_PREFIX}/rounds/{{round_id}}/secure", tags=["secure aggregation"], responses=ERRORS)


def _secure(service: Annotated[CoordinatorService, Depends(get_service)]) -> SecureRounds:
    return service.secure


Secure = Annotated[SecureRounds, Depends(_secure)]


def _json(model: BaseModel) -> Response:
    return Response(model.model_dump_json(), media_type=_JSON)


async def _body(request: Request) -> bytes:
    return bytes((await receive_body(request)).data)  # small JSON-like messages: an immutable copy is cheap


@router.post("/advertisement", response_model=SecureReceipt)
async def advertisement(round_id: RoundId, request: Request, secure: Secure, who: NodeId) -> SecureReceipt:
    """RoundPhase advertise_keys: this node's two round public keys, signed with its enrolled identity key."""
    return await run_in_threadpool(secure.advertise, round_id, who, await _body(request))


@router.get("/roster", response_model=SecureRoster)
async def roster(round_id: RoundId, secure: Secure, who: NodeId) -> Response:
    """From share_keys on: every advertised key of the round and the nodes' enrolled identity keys."""
    return _json(await run_in_threadpool(secure.roster, round_id, who))


@router.post("/shares", response_model=SecureReceipt)
async def shares(round_id: RoundId, request: Request, secure: Secure, who: NodeId) -> SecureReceipt:
    """RoundPhase share_keys: this node's encrypted shares, one per other node (opaque to the coordinator)."""
    return await run_in_threadpool(secure.shares, round_id, who, await _body(request))


@router.get("/delivery")
async def delivery(round_id: RoundId, secure: Secure, who: NodeId) -> Response:
    """From masked_input on: the shares the other nodes encrypted for this node, and who shared."""
    return _json(await run_in_threadpool(secure.delivery, round_id, who))


@router.put(UPLOAD_SUFFIX, response_model=SecureReceipt, openapi_extra=_BINARY_BODY)
async def masked_input(round_id: RoundId, request: Request, secure: Secure, context: Context, who: NodeId,
                       sha256: Annotated[str, Header(alias=SHA256_HEADER, pattern=r"^[0-9a-fA-F]{64}$")]
                       ) -> SecureReceipt:
    """RoundPhase masked_input: this node's masked input (a retry with the same bytes counts once)."""
    async with (checked_upload(request, context, round_id, who, RoundPhase.MASKED_INPUT),
                pooled_body(request, context.update_buffers) as received):  # only its sum and its hash are kept
        return await run_in_threadpool(partial(secure.masked_input, received_sha256=received.sha256), round_id, who,
                                       received.data, sha256)


@router.get("/survivors")
async def survivors(round_id: RoundId, secure: Secure, who: NodeId) -> Response:
    """From consistency_check on: U3, the nodes whose masked input arrived (each signs it once)."""
    return _json(await run_in_threadpool(secure.survivors, round_id, who))


@router.post("/consistency", response_model=SecureReceipt)
async def consistency(round_id: RoundId, request: Request, secure: Secure, who: NodeId) -> SecureReceipt:
    """RoundPhase consistency_check: this node's identity-key signature on (round, U3)."""
    return await run_in_threadpool(secure.consistency, round_id, who, await _body(request))


@router.get("/unmask-request")
async def unmask_request(round_id: RoundId, secure: Secure, who: NodeId) -> Response:
    """From unmasking on: which nodes survived and which dropped, with the survivors' signatures on that list."""
    return _json(await run_in_threadpool(secure.unmask_request, round_id, who))


@router.post("/unmask", response_model=SecureReceipt)
async def unmask(round_id: RoundId, request: Request, secure: Secure, who: NodeId) -> SecureReceipt:
    """RoundPhase unmasking: self-mask shares of survivors and mask-key shares of dropped nodes."""
    return await run_in_threadpool(secure.unmask, round_id, who, await _body(request))
