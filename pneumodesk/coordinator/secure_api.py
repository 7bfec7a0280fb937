"""HTTPS routes of secure aggregation (see ``pneumodesk.federation.secagg.wire`` for the list); node tokens only.

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations. Bodies are read raw and
validated by the secure-aggregation models themselves (their bytes travel as base64 in JSON), and the masked input
path ends in ``/update`` so the API's large-body limit applies to it; every other body has the JSON limit.
"""

from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import API_PREFIX, SHA256_HEADER
from pneumodesk.federation.secagg.wire import SecureReceipt, SecureRoster

from .bodies import BufferPool, pooled_body, receive_body
from .secure_rounds import SecureRounds

_JSON = "application/json"


def _json(model: Any) -> Response:
    return Response(model.model_dump_json(), media_type=_JSON)


def register_secure_routes(app: FastAPI, secure: SecureRounds, node: Callable[..., Any],
                           errors: dict[int | str, dict[str, Any]], update_buffers: BufferPool) -> None:
    """Add the secure-aggregation endpoints to ``app``; ``node`` is the dependency that authenticates a node;
    masked inputs are received into ``update_buffers``."""
    base = f"{API_PREFIX}/rounds/{{round_id}}/secure"
    Node = Annotated[str, Depends(node)]
    tags = ["secure aggregation"]

    async def body(request: Request) -> bytes:
        return bytes((await receive_body(request)).data)  # small JSON-like messages: an immutable copy is cheap

    @app.post(f"{base}/advertisement", response_model=SecureReceipt, responses=errors, tags=tags)
    async def advertisement(round_id: int, request: Request, who: Node) -> SecureReceipt:
        """RoundPhase advertise_keys: this node's two round public keys, signed with its enrolled identity key."""
        return await run_in_threadpool(secure.advertise, round_id, who, await body(request))

    @app.get(f"{base}/roster", response_model=SecureRoster, responses=errors, tags=tags)
    async def roster(round_id: int, who: Node) -> Response:
        """From share_keys on: every advertised key of the round and the nodes' enrolled identity keys."""
        return _json(await run_in_threadpool(secure.roster, round_id, who))

    @app.post(f"{base}/shares", response_model=SecureReceipt, responses=errors, tags=tags)
    async def shares(round_id: int, request: Request, who: Node) -> SecureReceipt:
        """RoundPhase share_keys: this node's encrypted shares, one per other node (opaque to the coordinator)."""
        return await run_in_threadpool(secure.shares, round_id, who, await body(request))

    @app.get(f"{base}/delivery", responses=errors, tags=tags)
    async def delivery(round_id: int, who: Node) -> Response:
        """From masked_input on: the shares the other nodes encrypted for this node, and who shared."""
        return _json(await run_in_threadpool(secure.delivery, round_id, who))

    @app.put(f"{base}/update", response_model=SecureReceipt, responses=errors, tags=tags,
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}})
    async def masked_input(round_id: int, request: Request, who: Node,
                           sha256: Annotated[str, Header(alias=SHA256_HEADER, pattern=r"^[0-9a-fA-F]{64}$")]
                           ) -> SecureReceipt:
        """RoundPhase masked_input: this node's masked input (a retry with the same bytes counts once)."""
        async with pooled_body(request, update_buffers) as received:  # only its sum and its hash are kept
            return await run_in_threadpool(partial(secure.masked_input, received_sha256=received.sha256), round_id,
                                           who, received.data, sha256)

    @app.get(f"{base}/unmask-request", responses=errors, tags=tags)
    async def unmask_request(round_id: int, who: Node) -> Response:
        """From unmasking on: which nodes survived and which dropped."""
        return _json(await run_in_threadpool(secure.unmask_request, round_id, who))

    @app.post(f"{base}/unmask", response_model=SecureReceipt, responses=errors, tags=tags)
    async def unmask(round_id: int, request: Request, who: Node) -> SecureReceipt:
        """RoundPhase unmasking: self-mask shares of survivors and mask-key shares of dropped nodes."""
        return await run_in_threadpool(secure.unmask, round_id, who, await body(request))
