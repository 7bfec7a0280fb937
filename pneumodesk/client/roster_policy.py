"""The hospital's rules on who a secure round is shared with, checked on the node before it shares any key.

Invariants:
- every set of the round (roster, U2, U3) has at least ``smallest_round`` nodes — the larger of the plan's
  ``min_nodes`` and the policy's ``min_nodes_per_round`` — fixed in the round's saved state at its start, so a
  restarted node, or one without its plan at hand, keeps it (``federation.secagg.roster_rules``);
- with ``min_recognised_peers = k > 0`` the roster must hold at least k peers whose identity key this hospital's
  admin recognised (``node.recognised_peers``), the peers it does *not* recognise must be fewer than the threshold
  (else they alone hold enough shares to rebuild this node's self-mask seed), and an unmasking request must keep at
  least k recognised peers among its survivors (else the revealed sum is this node's update plus peers the
  coordinator may control); each breach raises ``TooFewRecognisedPeers`` before anything is revealed;
- every roster the node is shown is written to ``home/federation/last-roster.json`` (node id and key fingerprint,
  nothing secret), whether it is accepted or not, so the admin can compare fingerprints out of band and recognise
  peers.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.secagg.roster_rules import RosterTooSmall, key_fingerprint, smallest_round
from pneumodesk.federation.secagg.wire import SecureRoster
from pneumodesk.node.policy import NodePolicy
from pneumodesk.node.recognised_peers import canonical_fingerprint
from pneumodesk.node.store import STORE_FILE

from .private_files import write_private

if TYPE_CHECKING:
    from pneumodesk.node import NodeService

LAST_ROSTER = Path("federation") / "last-roster.json"


class TooFewRecognisedPeers(RosterTooSmall):
    """The round's peers are not enough of the hospitals this node's admin recognised."""


@dataclass(frozen=True)
class RosterPeer:
    node_id: str
    fingerprint: str  # as shown: grouped hex (``key_fingerprint``)
    recognised: bool


@dataclass(frozen=True)
class RosterPolicy:
    """The policy's minimums and the recognised fingerprints (canonical), as read when a round starts."""

    min_nodes_per_round: int = NodePolicy.min_nodes_per_round
    min_recognised_peers: int = 0
    recognised: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, service: NodeService) -> RosterPolicy:
        """This node's policy and recognised peers, from its open node store."""
        policy = service.policy.get()
        return cls(policy.min_nodes_per_round, policy.min_recognised_peers, service.peers.fingerprints())

    @classmethod
    def read(cls, home: Path) -> RosterPolicy:
        """This node's policy and recognised peers from the node store in ``home`` (defaults when there is none)."""
        if not (Path(home) / STORE_FILE).exists():
            return cls()
        from pneumodesk.node import NodeService

        service = NodeService.open(home)
        try:
            return cls.of(service)
        finally:
            service.close()

    def smallest_round(self, plan: TrainingPlan | None) -> int:
        return smallest_round(plan.min_nodes if plan is not None else None, self.min_nodes_per_round)

    def check_roster(self, home: Path, own_id: str, roster: SecureRoster) -> RecognisedInRound:
        """Record the roster for the admin, then apply the recognised-peer rule (see the module docstring)."""
        peers = [RosterPeer(node, key_fingerprint(key),
                            canonical_fingerprint(key_fingerprint(key)) in self.recognised)
                 for node, key in sorted(roster.identity_keys.items()) if node != own_id]
        save_last_roster(home, peers)
        in_roster = {peer.node_id for peer in peers if peer.recognised} & set(roster.roster.node_ids)
        wanted = self.min_recognised_peers
        if wanted > 0:
            others = len(set(roster.roster.node_ids) - {own_id})
            if len(in_roster) < wanted:
                raise TooFewRecognisedPeers(
                    f"The round's roster holds {len(in_roster)} hospital(s) whose key this hospital's admin "
                    f"recognised; the policy asks for at least {wanted}. The others were enrolled by the coordinator "
                    "and may be its own, so nothing was sent."
                )
            if others - len(in_roster) >= roster.roster.threshold:
                raise TooFewRecognisedPeers(
                    f"{others - len(in_roster)} hospital(s) in the round are not recognised by this hospital's admin, "
                    f"as many as the threshold of {roster.roster.threshold}: together they could rebuild this "
                    "hospital's secret key shares, so nothing was sent."
                )
        return RecognisedInRound(frozenset(in_roster), wanted)


@dataclass(frozen=True)
class RecognisedInRound:
    """The recognised peers of an accepted roster; the unmasking request must keep enough of them."""

    node_ids: frozenset[str]
    wanted: int

    def check_survivors(self, survivors: Collection[str]) -> None:
        kept = len(self.node_ids & set(survivors))
        if self.wanted > 0 and kept < self.wanted:
            raise TooFewRecognisedPeers(
                f"The unmasking request keeps {kept} recognised hospital(s) among the survivors; the policy asks for "
                f"at least {self.wanted}, so the keys that unmask the sum were not sent."
            )


def save_last_roster(home: Path, peers: list[RosterPeer]) -> None:
    write_private(Path(home) / LAST_ROSTER, json.dumps([peer.__dict__ for peer in peers], indent=1).encode())


def last_roster(home: Path) -> list[RosterPeer]:
    """The peers of the last roster this node was shown (``[]`` when none, or when the file is unreadable)."""
    try:
        items = json.loads((Path(home) / LAST_ROSTER).read_text(encoding="utf-8"))
        return [RosterPeer(str(item["node_id"]), str(item["fingerprint"]), bool(item["recognised"])) for item in items]
    except (OSError, ValueError, KeyError, TypeError):
        return []
