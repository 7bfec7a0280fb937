"""The round state machine: states, phases and the transitions allowed between them.

A round goes open → collecting → aggregating → complete, or to failed from any unfinished state. ``RoundPhase`` names
what the coordinator expects from nodes while a round collects; both enums live in ``federation.vocabulary``. Plain
FedAvg has one phase (``plain_input``); secure aggregation goes advertise_keys → share_keys → masked_input → unmasking
within the same collecting state, each phase with its own rows in the submissions table (unique per round, phase and
node).
"""

from __future__ import annotations

from pneumodesk.federation.vocabulary import (
    ACCEPTS_SUBMISSIONS,
    FINISHED,
    PHASES_PLAIN,
    PHASES_SECURE,
    RoundPhase,
    RoundState,
)

from .errors import Conflict

__all__ = [
    "ACCEPTS_SUBMISSIONS",
    "FINISHED",
    "PHASES_PLAIN",
    "PHASES_SECURE",
    "TRANSITIONS",
    "RoundPhase",
    "RoundState",
    "check_transition",
]

TRANSITIONS: dict[RoundState, frozenset[RoundState]] = {
    RoundState.OPEN: frozenset({RoundState.COLLECTING, RoundState.AGGREGATING, RoundState.FAILED}),
    RoundState.COLLECTING: frozenset({RoundState.AGGREGATING, RoundState.FAILED}),
    RoundState.AGGREGATING: frozenset({RoundState.COMPLETE, RoundState.FAILED}),
    RoundState.COMPLETE: frozenset(),
    RoundState.FAILED: frozenset(),
}


def check_transition(current: str, target: RoundState) -> None:
    """Raise ``Conflict`` unless ``current → target`` is allowed."""
    state = RoundState(current)
    if target not in TRANSITIONS[state]:
        raise Conflict(f"The round is {state.value}; it cannot become {target.value}.")
