"""Secure aggregation (Bonawitz et al., CCS 2017) as pure, I/O-free code: the coordinator learns only the sum.

``SecAggNode`` is the node's side, ``SecAggServer`` the coordinator's; the messages in ``messages`` travel between
them (the coordinator relays node-to-node shares as opaque ciphertexts). See docs in ``node`` and ``server`` for
the call sequence of each phase, and ``quantise`` for the fixed-point format and its error bound.
"""

from .errors import (
    ConsistencyCheckFailed,
    KeySubstitutionDetected,
    ProtocolViolation,
    QuantisationError,
    ReconstructionFailed,
    SecAggError,
    ShareDecryptionFailed,
    TooFewSurvivors,
    UnmaskRequestRefused,
)
from .messages import (
    AggregateResult,
    ConsistencySignature,
    EncryptedShare,
    KeyAdvertisement,
    KeyRoster,
    MaskedInput,
    ServerStage,
    ShareDelivery,
    ShareKeysMessage,
    SurvivorList,
    UnmaskRequest,
    UnmaskResponse,
)
from .node import NodeState, SecAggNode
from .quantise import QuantisationSpec, decode, encode
from .server import SecAggServer, default_threshold
from .vector import flatten_state, unflatten_state

__all__ = [
    "AggregateResult",
    "ConsistencyCheckFailed",
    "ConsistencySignature",
    "EncryptedShare",
    "KeyAdvertisement",
    "KeyRoster",
    "KeySubstitutionDetected",
    "MaskedInput",
    "NodeState",
    "ProtocolViolation",
    "QuantisationError",
    "QuantisationSpec",
    "ReconstructionFailed",
    "SecAggError",
    "SecAggNode",
    "SecAggServer",
    "ServerStage",
    "ShareDecryptionFailed",
    "ShareDelivery",
    "ShareKeysMessage",
    "SurvivorList",
    "TooFewSurvivors",
    "UnmaskRequest",
    "UnmaskRequestRefused",
    "UnmaskResponse",
    "decode",
    "default_threshold",
    "encode",
    "flatten_state",
    "unflatten_state",
]
