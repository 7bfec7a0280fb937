"""How the secure-aggregation messages travel over the coordinator's HTTPS API (both sides import this).

Endpoints (node tokens only; ``{id}`` is the coordinator's round id; small messages are the ``messages`` models as
JSON, the masked input is ``MaskedInput.to_bytes()`` as ``application/octet-stream`` with ``X-Content-SHA256``):

    POST {id}/secure/advertisement   KeyAdvertisement      → SecureReceipt     (phase advertise_keys)
    GET  {id}/secure/roster                                → SecureRoster      (from share_keys on)
    POST {id}/secure/shares          ShareKeysMessage      → SecureReceipt     (phase share_keys)
    GET  {id}/secure/delivery                              → ShareDelivery     (from masked_input on)
    PUT  {id}/secure/update          MaskedInput bytes     → SecureReceipt     (phase masked_input)
    GET  {id}/secure/survivors                             → SurvivorList      (from consistency_check on)
    POST {id}/secure/consistency     ConsistencySignature  → SecureReceipt     (phase consistency_check)
    GET  {id}/secure/unmask-request                        → UnmaskRequest     (from unmasking on)
    POST {id}/secure/unmask          UnmaskResponse        → SecureReceipt     (phase unmasking)

Nodes learn of phase changes from the round's ``phase`` and ``revision`` in the plan's long poll. A message sent in
the wrong phase gets 409 (too early or too late: the node waits, or has missed the round); an invalid one 422.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from ..vocabulary import RoundPhase, RoundState
from .messages import KeyRoster, NodeId

ROUNDS_PATH = "/rounds"
SECURE_PREFIX = "/secure"
MASKED_INPUT_SUFFIX = "/secure/update"  # ends in "/update": the API's large-body limit applies to it
IdentityKey = Annotated[bytes, Field(min_length=32, max_length=32)]


def round_key(audience: str, plan_sha256: str, round_id: int) -> str:
    """The protocol's round id: unique across federations, plans and rounds; signed into every advertisement."""
    return f"{audience}/{plan_sha256}/{round_id}"


def path(round_id: int, endpoint: str) -> str:
    """``/rounds/{id}/secure/{endpoint}`` (below the API prefix)."""
    return f"{ROUNDS_PATH}/{round_id}{SECURE_PREFIX}/{endpoint}"


class SecureRoster(BaseModel):
    """The key roster and the enrolled Ed25519 identity key of every node in it (raw, base64 in JSON).

    A node checks its own identity key here and pins the others' (trust on first use) — the coordinator cannot
    swap a round key without a signature from that node's identity key, nor an identity key once pinned.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    roster: KeyRoster
    identity_keys: dict[NodeId, IdentityKey]


class SecureReceipt(BaseModel):
    """The coordinator's answer to a secure-aggregation message; ``counted`` is false for an identical retry."""

    round_id: int
    phase: RoundPhase  # the phase the message was sent for
    counted: bool
    round_state: RoundState
    round_phase: RoundPhase  # the round's phase after the message
