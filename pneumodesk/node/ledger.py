"""The privacy ledger: every local DP training run's (ε, δ) recorded against the dataset it used.

Invariants: entries are append-only (SQLite triggers refuse UPDATE and DELETE, as for the audit log); a dataset's
spending is the plain sum of its entries' ε (basic composition: conservative — an RDP accountant over all runs
would give a smaller figure, so the cap is never under-counted); ``ensure_room`` is checked before training starts,
so a run that would push a dataset past its cap never starts, and before a plan is approved, counting what other
approved plans may still spend (their reservation), so approved plans together always fit the cap. Each entry is
also audited as the system actor "node".
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from sqlalchemy import func, select

from .audit import AuditLog
from .errors import PrivacyBudgetExceeded, RegisteredDatasetError
from .models import Dataset, LedgerRow, utcnow
from .store import NodeStore

SYSTEM_ACTOR = "node"
#: Rounding slack when comparing sums of floats with the cap (ε values are reported to 2 decimals).
EPSILON_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    time: dt.datetime
    dataset_id: int
    plan_sha256: str
    round_number: int
    epsilon: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps: int


class PrivacyLedger:
    """Record: the participation engine only (no actor). Read: anyone signed in (no secret in it)."""

    def __init__(self, store: NodeStore, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    def record(self, dataset_id: int, plan_sha256: str, round_number: int, epsilon: float, delta: float,
               noise_multiplier: float, sample_rate: float, steps: int) -> None:
        """Append one run's spending (after it trained, before anything else happens), together with its audit
        entry in one transaction: when this returns both are on disk; when it raises, neither is."""
        if not math.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"ε must be a finite number ≥ 0, not {epsilon!r}")
        with self.store.session() as session:
            if session.get(Dataset, dataset_id) is None:
                raise RegisteredDatasetError(f"There is no dataset {dataset_id}.")
            session.add(LedgerRow(time=utcnow(), dataset_id=dataset_id, plan_sha256=plan_sha256,
                                  round_number=int(round_number), epsilon=float(epsilon), delta=float(delta),
                                  noise_multiplier=float(noise_multiplier), sample_rate=float(sample_rate),
                                  steps=int(steps)))
            self.audit.append_in(session, SYSTEM_ACTOR, "privacy_spent", f"dataset {dataset_id}", details={
                "plan_sha256": plan_sha256, "round": int(round_number), "epsilon": round(float(epsilon), 6),
                "delta": float(delta), "noise_multiplier": round(float(noise_multiplier), 6), "steps": int(steps),
            })

    def spent(self, dataset_id: int) -> float:
        """Total ε recorded against the dataset (basic composition)."""
        with self.store.session() as session:
            total = session.scalar(select(func.sum(LedgerRow.epsilon)).where(LedgerRow.dataset_id == dataset_id))
        return float(total or 0.0)

    def spent_by_plan(self, dataset_id: int) -> dict[str, float]:
        """plan sha256 → ε that plan has spent on the dataset."""
        query = (select(LedgerRow.plan_sha256, func.sum(LedgerRow.epsilon)).where(LedgerRow.dataset_id == dataset_id)
                 .group_by(LedgerRow.plan_sha256))
        with self.store.session() as session:
            return {sha: float(total) for sha, total in session.execute(query)}

    def entries(self, dataset_id: int) -> list[LedgerEntry]:
        """The dataset's entries, oldest first."""
        query = select(LedgerRow).where(LedgerRow.dataset_id == dataset_id).order_by(LedgerRow.id)
        with self.store.session() as session:
            return [LedgerEntry(r.id, r.time, r.dataset_id, r.plan_sha256, r.round_number, r.epsilon, r.delta,
                                r.noise_multiplier, r.sample_rate, r.steps) for r in session.scalars(query)]

    def ensure_room(self, dataset_id: int, epsilon: float, cap: float, *, reserved: float = 0.0) -> None:
        """Raise ``PrivacyBudgetExceeded`` unless spending ``epsilon`` more — on top of what was spent and the
        ``reserved`` ε other approved plans may still spend — keeps the dataset within ``cap``."""
        spent = self.spent(dataset_id)
        if not math.isfinite(epsilon) or spent + reserved + epsilon > cap + EPSILON_TOLERANCE:
            raise PrivacyBudgetExceeded(dataset_id, spent, epsilon, cap, reserved=reserved)
