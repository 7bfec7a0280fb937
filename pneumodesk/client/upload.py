"""The seam where a trained update leaves the node. Plain FedAvg uploads it as it is; secure aggregation (issue 7)
replaces this strategy with its multi-phase exchange (advertise keys → share keys → masked input → unmask)
without touching the participation engine.

Invariant: a strategy is given the update only after the privacy ledger has recorded its ε, and it may be called
again with the very same update after a crash or a lost answer (it must be idempotent for one round).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pneumodesk.federation.messages import RoundInfo, UploadReceipt

from .api import CoordinatorClient


@dataclass(frozen=True)
class PreparedUpdate:
    """One round's trained update: safetensors bytes (what plain FedAvg sends), the arrays, and the example count."""

    data: bytes
    sha256: str
    examples: int
    arrays: Callable[[], dict[str, np.ndarray]]  # parsed lazily: only a masking strategy needs them


class UpdateUploader(Protocol):
    """Delivers one update for one round; returns the coordinator's receipt."""

    name: str

    def deliver(self, client: CoordinatorClient, round_info: RoundInfo, update: PreparedUpdate,
                should_stop: Callable[[], bool]) -> UploadReceipt: ...


class PlainUpload:
    """Plain FedAvg: PUT the safetensors bytes with their sha256 and the example count (a retry counts once)."""

    name = "plain"

    def deliver(self, client: CoordinatorClient, round_info: RoundInfo, update: PreparedUpdate,
                should_stop: Callable[[], bool]) -> UploadReceipt:
        return client.upload(round_info.round_id, update.data, update.examples)
