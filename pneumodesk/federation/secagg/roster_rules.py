"""How small a secure-aggregation round a node joins: the larger of the plan's and the hospital's minimum, on every set.

Invariants: the minimum is fixed when the node's round state is made and saved with it, so it holds after a restart
and when no plan object is at hand; every set the coordinator names — the key roster (U1), the nodes whose shares
were delivered (U2) and the survivors of an unmasking request (U3) — must have at least that many nodes, or the node
refuses with ``RosterTooSmall`` before it reveals anything. A round is never smaller than two nodes: in a round of
one, the "sum" is the update itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from .errors import SecAggError

SMALLEST_ROUND = 2


class RosterTooSmall(SecAggError):
    """The coordinator named fewer nodes than this hospital's minimum; masks could then be removed from its update."""


def smallest_round(plan_min_nodes: int | None, policy_min_nodes: int) -> int:
    """The fewest nodes any set of a round may have: the larger of the plan's and the policy's minimum (≥ 2)."""
    return max(plan_min_nodes or 0, policy_min_nodes, SMALLEST_ROUND)


_WHAT = {
    "roster": "The round's key roster",
    "shared": "The list of nodes that shared their keys",
    "survivors": "The unmasking request's list of surviving nodes",
}


def check_set(which: str, nodes: Collection[str], minimum: int) -> None:
    """Raise ``RosterTooSmall`` when ``nodes`` (``which``: roster, shared or survivors) has fewer than ``minimum``."""
    count = len(set(nodes))
    if count < minimum:
        raise RosterTooSmall(
            f"{_WHAT[which]} names {count} hospital(s); this hospital takes part only with at least {minimum}. "
            "With fewer, the coordinator could remove the masks from this hospital's own update, so nothing was sent."
        )


def key_fingerprint(identity_key: bytes) -> str:
    """A node identity key's fingerprint as an admin compares it by eye: sha256, first 20 bytes, in groups of 4."""
    digest = hashlib.sha256(identity_key).hexdigest()[:40]
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))
