"""The protocol's words, spelled once: round states and phases, membership and plan status, error codes, refusals.

The coordinator stores and sends these values, the message schemas validate them and the node's client decides on
them; each side imports them from here, so a renamed value is renamed everywhere (and a typo is a type error).
The string values are the wire format: changing one is a protocol change (``PROTOCOL_VERSION``).
"""

from __future__ import annotations

from enum import StrEnum


class RoundState(StrEnum):
    """Where a round is: open → collecting → aggregating → complete, or failed from any unfinished state."""

    OPEN = "open"  # accepting joins and submissions; nothing received yet
    COLLECTING = "collecting"  # at least one submission received
    AGGREGATING = "aggregating"  # enough inputs; the coordinator is computing (resumed after a restart)
    COMPLETE = "complete"  # a new model version exists
    FAILED = "failed"  # deadline passed without enough inputs, or aggregation failed


ACCEPTS_SUBMISSIONS = frozenset({RoundState.OPEN, RoundState.COLLECTING})
FINISHED = frozenset({RoundState.COMPLETE, RoundState.FAILED})


class RoundPhase(StrEnum):
    """What the coordinator expects from nodes while a round accepts submissions.

    Plain FedAvg has one phase; secure aggregation (Bonawitz et al.) goes through the other five, in this order.
    """

    PLAIN_INPUT = "plain_input"
    ADVERTISE_KEYS = "advertise_keys"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    CONSISTENCY_CHECK = "consistency_check"
    UNMASKING = "unmasking"


PHASES_PLAIN: tuple[RoundPhase, ...] = (RoundPhase.PLAIN_INPUT,)
PHASES_SECURE: tuple[RoundPhase, ...] = (
    RoundPhase.ADVERTISE_KEYS,
    RoundPhase.SHARE_KEYS,
    RoundPhase.MASKED_INPUT,
    RoundPhase.CONSISTENCY_CHECK,
    RoundPhase.UNMASKING,
)


class MembershipStatus(StrEnum):
    """A node's standing with the federation, as the operator set it."""

    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"


class PlanStatus(StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"


class ErrorCode(StrEnum):
    """The ``error`` field of every JSON error body: what a client decides on (never the message's words)."""

    BAD_REQUEST = "bad_request"
    INVALID_INPUT = "invalid_input"
    UNAUTHORISED = "unauthorised"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    BODY_TOO_LARGE = "body_too_large"
    RATE_LIMITED = "rate_limited"
    HTTP_ERROR = "http_error"
    CONFIGURATION = "configuration"
    INTERNAL_ERROR = "internal_error"
    UNAVAILABLE = "unavailable"  # for a moment (e.g. the coordinator's database restarting): retry after Retry-After
    # Refusals a node acts on without reading the message.
    NODE_REVOKED = "node_revoked"
    NODE_PENDING = "node_pending"
    ROUND_FAILED = "round_failed"


class RefusalReason(StrEnum):
    """Why a node will not (or may not) take part in a round; shown to the admin, recorded in the node's log."""

    NOT_APPROVED = "not_approved"  # no admin approval for this plan hash
    PLAN_CHANGED = "plan_changed"  # the coordinator now serves different plan bytes under the approved name
    OUTSIDE_POLICY = "outside_policy"  # the plan breaks the node's policy bounds
    BUDGET = "budget"  # the dataset's privacy budget cannot pay for another round
    NO_DATASET = "no_dataset"  # the approved dataset is gone or changed
    REVOKED = "revoked"  # the operator revoked this node
    NOT_AUTHORISED = "not_authorised"  # the coordinator refused our identity for another reason
    TLS = "tls"  # the coordinator's certificate is not signed by the pinned federation CA
    SECURE_AGGREGATION = "secure_aggregation"  # the coordinator broke the secure-aggregation protocol (keys, terms)
