"""Per-round figures for the Federation page's charts, from what the node store already keeps: each global model's
ROC AUC on this hospital's validation split (the model registry's candidates) and the bytes this node sent for each
round (the egress log).

Invariants: only figures (numbers per round) come out, never an image-level fact; a round's bytes are those of
every request to ``/rounds/<id>/…`` (its coordinator id), so joining a plan — sent before the round is known — is
not counted against any round.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .egress import EgressRecord
from .model_registry import LocalModel

_ROUND_PATH = re.compile(r"/rounds/(\d+)(?:/|$)")


@dataclass(frozen=True)
class PlanAucHistory:
    """One plan's global models as checked here: (round number, ROC AUC), in round order."""

    plan_sha256: str
    rounds: tuple[int, ...]
    auc: tuple[float, ...]


@dataclass(frozen=True)
class RoundHistory:
    auc_by_plan: tuple[PlanAucHistory, ...]
    byte_rounds: tuple[int, ...]  # the coordinator's round ids, ascending
    bytes_sent: tuple[int, ...]


def auc_by_plan(models: Iterable[LocalModel]) -> tuple[PlanAucHistory, ...]:
    points: dict[str, dict[int, float]] = {}
    for model in models:
        auc = model.metrics.get("roc_auc")
        if model.plan_sha256 is None or model.round_number is None or not isinstance(auc, int | float):
            continue
        points.setdefault(model.plan_sha256, {})[model.round_number] = float(auc)  # a re-check replaces
    return tuple(PlanAucHistory(sha, tuple(sorted(by_round)), tuple(by_round[r] for r in sorted(by_round)))
                 for sha, by_round in sorted(points.items()))


def bytes_sent_by_round(records: Iterable[EgressRecord]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    totals: dict[int, int] = {}
    for record in records:
        match = _ROUND_PATH.search(record.endpoint)
        if match:
            round_id = int(match.group(1))
            totals[round_id] = totals.get(round_id, 0) + record.bytes_sent
    rounds = tuple(sorted(totals))
    return rounds, tuple(totals[r] for r in rounds)


def round_history(models: Iterable[LocalModel], records: Iterable[EgressRecord]) -> RoundHistory:
    rounds, sent = bytes_sent_by_round(records)
    return RoundHistory(auc_by_plan(models), rounds, sent)


__all__ = ["PlanAucHistory", "RoundHistory", "auc_by_plan", "bytes_sent_by_round", "round_history"]
