"""Secure-aggregation messages and their wire encodings.

Small messages are frozen pydantic models whose bytes fields travel as base64 in JSON (``model_dump_json()`` /
``model_validate_json()``); the masked input, the only large one, is raw little-endian words behind a short binary
header (``MaskedInput.to_bytes`` / ``from_bytes``). Unknown fields are refused.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import ProtocolViolation
from .quantise import QuantisationSpec
from .shamir import SHARE_BYTES

NodeId = Annotated[str, Field(min_length=1, max_length=128)]
RoundId = Annotated[str, Field(min_length=1, max_length=256)]
PublicKey = Annotated[bytes, Field(min_length=32, max_length=32)]
Signature = Annotated[bytes, Field(min_length=64, max_length=64)]
ShareBytes = Annotated[bytes, Field(min_length=SHARE_BYTES, max_length=SHARE_BYTES)]


class ServerStage(StrEnum):
    """Server phases, in order; ``done`` and ``failed`` are final."""

    ADVERTISE_KEYS = "advertise_keys"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    CONSISTENCY_CHECK = "consistency_check"
    UNMASKING = "unmasking"
    DONE = "done"
    FAILED = "failed"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")


class KeyAdvertisement(_Message):
    """Stage advertise_keys, node → coordinator: the node's two fresh X25519 public keys, signed (Ed25519)."""

    round_id: RoundId
    node_id: NodeId
    mask_public: PublicKey
    share_public: PublicKey
    signature: Signature


class KeyRoster(_Message):
    """Coordinator → every advertiser (U1): all advertisements, sorted by node id, and the round's parameters.

    A node's Shamir x-coordinate is its 1-based position here.
    """

    round_id: RoundId
    threshold: int = Field(ge=2)
    vector_length: int = Field(ge=1, le=2**34, description="coordinates of the update, without the count")
    quantisation: QuantisationSpec
    advertisements: tuple[KeyAdvertisement, ...]

    @model_validator(mode="after")
    def _sorted_unique(self) -> KeyRoster:
        ids = [item.node_id for item in self.advertisements]
        if ids != sorted(set(ids)):
            raise ValueError("advertisements must be sorted by node id, one per node")
        return self

    @property
    def node_ids(self) -> tuple[str, ...]:
        return tuple(item.node_id for item in self.advertisements)

    def position(self, node_id: str) -> int:
        return self.node_ids.index(node_id) + 1

    def advertisement(self, node_id: str) -> KeyAdvertisement:
        for item in self.advertisements:
            if item.node_id == node_id:
                return item
        raise ProtocolViolation(f"Node {node_id} is not part of this round.")


class EncryptedShare(_Message):
    """AES-GCM ciphertext of one node's shares for another; opaque to the coordinator, which only relays it."""

    sender: NodeId
    receiver: NodeId
    ciphertext: Annotated[bytes, Field(min_length=12 + 16, max_length=1024)]


class ShareKeysMessage(_Message):
    """Stage share_keys, node → coordinator: one encrypted share for every other node of the roster."""

    round_id: RoundId
    sender: NodeId
    shares: tuple[EncryptedShare, ...]


class ShareDelivery(_Message):
    """Coordinator → node, before masked_input: U2 (every node whose shares were relayed) and those for this node."""

    round_id: RoundId
    receiver: NodeId
    senders: tuple[NodeId, ...]
    shares: tuple[EncryptedShare, ...]


class SurvivorList(_Message):
    """Coordinator → every node of U3, before unmasking: U3 (the nodes whose masked input arrived), sorted."""

    round_id: RoundId
    survivors: tuple[NodeId, ...]


class ConsistencySignature(_Message):
    """Stage consistency_check, node → coordinator: the node's Ed25519 identity signature on (round id, U3)."""

    round_id: RoundId
    node_id: NodeId
    signature: Signature


class UnmaskRequest(_Message):
    """Coordinator → survivors: U3 (sent a masked input), the dropped nodes U2 \\ U3, and the signatures of U3 that
    the coordinator collected (a node answers only when at least t nodes of U3 signed this very U3)."""

    round_id: RoundId
    survivors: tuple[NodeId, ...]
    dropped: tuple[NodeId, ...]
    signatures: tuple[ConsistencySignature, ...] = ()


class UnmaskResponse(_Message):
    """Stage unmasking, node → coordinator: self-mask-seed shares of survivors, mask-key shares of dropped nodes."""

    round_id: RoundId
    sender: NodeId
    self_mask_shares: dict[NodeId, ShareBytes]
    mask_key_shares: dict[NodeId, ShareBytes]


_MAGIC = b"PDSAMI01"
_HEADER = struct.Struct("<8sHHBQ")  # magic, len(round_id), len(node_id), word bits, number of words


@dataclass(frozen=True)
class MaskedInput:
    """Stage masked_input, node → coordinator: y_u = x_u + PRG(b_u) + Σ ± PRG(s_uv) mod 2^k, ``vector_length + 1``
    words (the last is the masked example count). Wire form: a 21-byte header, the two ids, raw little-endian words.
    """

    round_id: str
    node_id: str
    words: np.ndarray

    def to_bytes(self) -> bytes:
        round_id, node_id = self.round_id.encode(), self.node_id.encode()
        bits = self.words.dtype.itemsize * 8
        body = np.ascontiguousarray(self.words, dtype=self.words.dtype.newbyteorder("<"))
        header = _HEADER.pack(_MAGIC, len(round_id), len(node_id), bits, body.size)
        return b"".join((header, round_id, node_id, body.data.cast("B")))

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> MaskedInput:
        view = memoryview(data)
        if len(view) < _HEADER.size:
            raise ProtocolViolation("The masked input is too short to be one.")
        magic, round_len, node_len, bits, count = _HEADER.unpack_from(view)
        if magic != _MAGIC or bits not in (32, 64):
            raise ProtocolViolation("This is not a masked input of this protocol version.")
        start = _HEADER.size + round_len + node_len
        if len(view) != start + count * bits // 8:
            raise ProtocolViolation("The masked input's length does not match its header; it was cut or padded.")
        try:
            round_id = bytes(view[_HEADER.size : _HEADER.size + round_len]).decode()
            node_id = bytes(view[_HEADER.size + round_len : start]).decode()
        except UnicodeDecodeError:
            raise ProtocolViolation("The masked input's ids are not text.") from None
        dtype = np.dtype(np.uint32 if bits == 32 else np.uint64).newbyteorder("<")
        words = np.frombuffer(view[start:], dtype=dtype, count=count)
        return cls(round_id=round_id, node_id=node_id, words=words)


@dataclass(frozen=True)
class AggregateResult:
    """What the coordinator learns: the weighted mean of the survivors' (clipped) updates, and who they were."""

    mean: np.ndarray  # float64, vector_length
    total_examples: int
    contributors: tuple[str, ...]
    dropped: tuple[str, ...]
    error_bound: float
