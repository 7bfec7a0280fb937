"""The round state machine: states, phases and the transitions allowed between them.

A round goes open → collecting → aggregating → complete, or to failed from any unfinished state. ``Phase`` names what
the coordinator expects from nodes while a round collects. Plain FedAvg has one phase (``plain_input``); secure
aggregation will add advertise_keys → share_keys → masked_input → unmasking as further phases of the same collecting
state, each with its own rows in the submissions table (unique per round, phase and node), so no existing state or
table changes when it arrives.
"""

from __future__ import annotations

from enum import StrEnum

from .errors import Conflict


class RoundState(StrEnum):
    OPEN = "open"  # accepting joins and submissions; nothing received yet
    COLLECTING = "collecting"  # at least one submission received
    AGGREGATING = "aggregating"  # enough inputs; the coordinator is computing (resumed after a restart)
    COMPLETE = "complete"  # a new model version exists
    FAILED = "failed"  # deadline passed without enough inputs, or aggregation failed


class Phase(StrEnum):
    PLAIN_INPUT = "plain_input"
    # Secure aggregation (``secure_rounds``): the round stays open/collecting through these, in this order.
    ADVERTISE_KEYS = "advertise_keys"
    SHARE_KEYS = "share_keys"
    MASKED_INPUT = "masked_input"
    UNMASKING = "unmasking"


ACCEPTS_SUBMISSIONS = frozenset({RoundState.OPEN, RoundState.COLLECTING})
FINISHED = frozenset({RoundState.COMPLETE, RoundState.FAILED})

TRANSITIONS: dict[RoundState, frozenset[RoundState]] = {
    RoundState.OPEN: frozenset({RoundState.COLLECTING, RoundState.AGGREGATING, RoundState.FAILED}),
    RoundState.COLLECTING: frozenset({RoundState.AGGREGATING, RoundState.FAILED}),
    RoundState.AGGREGATING: frozenset({RoundState.COMPLETE, RoundState.FAILED}),
    RoundState.COMPLETE: frozenset(),
    RoundState.FAILED: frozenset(),
}

PHASES_PLAIN: tuple[Phase, ...] = (Phase.PLAIN_INPUT,)
PHASES_SECURE: tuple[Phase, ...] = (Phase.ADVERTISE_KEYS, Phase.SHARE_KEYS, Phase.MASKED_INPUT, Phase.UNMASKING)


def check_transition(current: str, target: RoundState) -> None:
    """Raise ``Conflict`` unless ``current → target`` is allowed."""
    state = RoundState(current)
    if target not in TRANSITIONS[state]:
        raise Conflict(f"The round is {state.value}; it cannot become {target.value}.")
