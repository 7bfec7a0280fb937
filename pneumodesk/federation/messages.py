"""Protocol message schemas (JSON bodies under /api/v1) and the bytes a node signs to prove its identity.

Both the coordinator and the node import these, so a field renamed on one side is renamed on the other.
Invariant: request schemas forbid unknown fields, so a typo is an error rather than a silently ignored value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .vocabulary import MembershipStatus, PlanStatus, RoundPhase, RoundState

API_PREFIX = "/api/v1"
PROTOCOL_VERSION = 1
CHALLENGE_CONTEXT = b"pneumodesk-node-challenge-v1"
SHA256_HEADER = "X-Content-SHA256"
EXAMPLES_HEADER = "X-Example-Count"


def challenge_bytes(audience: str, node_id: str, nonce: str) -> bytes:
    """What a node signs with its Ed25519 key to get a token: bound to this federation, this node and one nonce."""
    return b"\n".join((CHALLENGE_CONTEXT, audience.encode(), node_id.encode(), nonce.encode()))


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorBody(BaseModel):
    """Every error response: a stable machine-readable code and a sentence for people."""

    error: str
    message: str
    details: list[dict[str, object]] | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class VersionInfo(BaseModel):
    software: str
    version: str
    protocol: int = PROTOCOL_VERSION
    federation: str


class EnrolRequest(_Request):
    code: str = Field(min_length=8, max_length=128)
    name: str = Field(min_length=1, max_length=120)
    public_key: str = Field(min_length=40, max_length=64, description="raw Ed25519 public key, base64url")


class NodeInfo(BaseModel):
    node_id: str
    name: str
    status: MembershipStatus
    created: str
    public_key_sha256: str


class ChallengeResponse(BaseModel):
    nonce: str
    expires: str
    audience: str


class TokenRequest(_Request):
    nonce: str = Field(min_length=16, max_length=128)
    signature: str = Field(min_length=80, max_length=100, description="Ed25519 signature, base64url")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class LoginRequest(_Request):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class EnrolmentCode(BaseModel):
    code: str
    expires: str


class PlanSummary(BaseModel):
    plan_sha256: str
    name: str
    published: str
    status: PlanStatus
    plan: dict[str, object]


class RoundInfo(BaseModel):
    """A round as a node or operator sees it; ``revision`` changes whenever anything here changes."""

    round_id: int
    plan_sha256: str
    number: int
    state: RoundState
    phase: RoundPhase
    model_version: int
    model_sha256: str
    deadline: str
    updates_received: int
    min_nodes: int
    result_version: int | None = None
    revision: str
    reason: str | None = None


class PlanWait(BaseModel):
    """Answer to a long poll: the plan's current round (``None`` once the plan is finished) and whether it changed."""

    changed: bool
    plan_status: PlanStatus
    round: RoundInfo | None


class UploadReceipt(BaseModel):
    round_id: int
    update_sha256: str
    examples: int
    counted: bool = Field(description="false when this exact update had already been received (a retry)")
    round_state: RoundState


class ModelVersionInfo(BaseModel):
    version: int
    sha256: str
    architecture: str
    created: str
    parent_version: int | None
    plan_sha256: str | None
    round_number: int | None
    contributors: int | None
    size_bytes: int
