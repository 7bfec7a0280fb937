"""ε over time per dataset, for the Training page's chart: the privacy ledger's entries as a running total, with
what approved plans may still spend and the cap.

Invariant: ``running_total`` is the sum of the entries recorded against this dataset alone, up to each entry's
time; ``spent`` is the ledger's own figure (the dataset's most-spent image, counting other datasets that hold the
same images), so ``spent + held`` is what the cap is checked against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import accumulate

from .approvals import ApprovalService
from .ledger import PrivacyLedger


@dataclass(frozen=True)
class BudgetHistory:
    dataset_id: int
    times: tuple[dt.datetime, ...]
    running_total: tuple[float, ...]
    spent: float
    held: float  # ε approved plans may still spend on the dataset's images
    cap: float


def budget_history(ledger: PrivacyLedger, approvals: ApprovalService, dataset_id: int, cap: float) -> BudgetHistory:
    entries = ledger.entries(dataset_id)
    return BudgetHistory(dataset_id, tuple(e.time for e in entries), tuple(accumulate(e.epsilon for e in entries)),
                         ledger.spent(dataset_id), approvals.reserved(dataset_id), cap)


__all__ = ["BudgetHistory", "budget_history"]
