"""The privacy ledger: every local DP training run's (ε, δ) recorded against the dataset it used, and charged to
that dataset's images.

Invariants: entries are append-only (SQLite triggers refuse UPDATE and DELETE, as for the audit log); spending
follows the images, not the dataset's row id (DESIGN 9): an image's spending is the plain sum of the ε of every
entry whose dataset holds the image (by content digest, ``DatasetImage``), and a dataset's spending is that of its
most-spent image — so removing and re-adding a dataset, registering the same images under another name or place,
or a subset of them, never resets what they spent (basic composition per image: conservative — an RDP
accountant over all runs would give a smaller figure, so the cap is never under-counted; validation images are
charged too, as an image may be on the training side of an overlapping dataset); ``ensure_room`` is checked before
training starts, so a run that would push any of the dataset's images past the cap never starts, and before a plan
is approved, counting what approved plans may still spend on the same images (their reservation, see
``worst_image``), so approved plans together always fit the cap. Each entry is also audited as the system actor
"node".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from .audit import AuditLog
from .errors import PrivacyBudgetExceeded, RegisteredDatasetError
from .models import Dataset, DatasetImage, LedgerRow, utcnow
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
        """ε spent by the dataset's most-spent image, counting the entries of every dataset that holds it."""
        return self.worst_image(dataset_id)

    def spent_by_dataset(self) -> dict[int, float]:
        """dataset row id → total ε of the entries recorded against it (its own runs only)."""
        query = select(LedgerRow.dataset_id, func.sum(LedgerRow.epsilon)).group_by(LedgerRow.dataset_id)
        with self.store.session() as session:
            return {int(dataset_id): float(total) for dataset_id, total in session.execute(query)}

    def worst_image(self, dataset_id: int, held: Mapping[int, float] | None = None) -> float:
        """The largest total over the dataset's images of what the datasets holding each image have spent, plus
        ``held`` (dataset row id → ε still reserved on that dataset's images by approved plans)."""
        charges = self.spent_by_dataset()
        for other, epsilon in (held or {}).items():
            charges[other] = charges.get(other, 0.0) + epsilon
        charges = {other: epsilon for other, epsilon in charges.items() if epsilon > 0}
        own = charges.get(dataset_id, 0.0)  # also for a dataset whose images were never recorded
        if not charges:
            return 0.0
        with self.store.session() as session:
            return max((sum(charges[other] for other in sharing)
                        for sharing in _sharing_patterns(session, dataset_id, charges)), default=own)

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
        """Raise ``PrivacyBudgetExceeded`` unless spending ``epsilon`` more — on top of what the dataset's images
        spent and the ``reserved`` ε other approved plans may still spend on them — keeps every image within
        ``cap``."""
        spent = self.spent(dataset_id)
        if not math.isfinite(epsilon) or spent + reserved + epsilon > cap + EPSILON_TOLERANCE:
            raise PrivacyBudgetExceeded(dataset_id, spent, epsilon, cap, reserved=reserved)


def _sharing_patterns(session: Session, dataset_id: int, among: Mapping[int, float]) -> set[frozenset[int]]:
    """The distinct sets of datasets (limited to ``among``) that hold an image of ``dataset_id``: one set per
    group of its images held by exactly those datasets. A dataset whose images were never recorded (none) has none."""
    mine, other = aliased(DatasetImage), aliased(DatasetImage)
    per_image = (select(func.group_concat(other.dataset_id))
                 .select_from(mine).join(other, other.digest == mine.digest)
                 .where(mine.dataset_id == dataset_id, other.dataset_id.in_(list(among)))
                 .group_by(mine.digest))
    return {frozenset(int(part) for part in text.split(",")) for text in session.scalars(per_image.distinct())}
