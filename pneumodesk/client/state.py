"""What the participation engine must remember across a crash or restart, as one small JSON file per plan.

Layout: ``home/federation/participation/<plan sha256>.json`` and, while an update is trained but not yet
accepted by the coordinator, ``…/<plan sha256>/round-<id>.safetensors`` (0600; deleted once delivered).
A JSON file (not the node DB) because this is the engine's private bookkeeping: it changes every few seconds,
needs no audit and no migration, and deleting it only costs a re-check (never a second ε: the ledger is in the DB).

Invariant: the file is replaced atomically (write to a temporary file, fsync, rename), so a crash leaves either the
old or the new state, never half of one.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from .private_files import write_private

Stage = Literal["trained", "uploaded", "missed", "settled"]


@dataclass
class RoundRecord:
    round_id: int
    number: int
    stage: Stage
    model_version: int
    examples: int = 0
    update_sha256: str = ""
    result_version: int | None = None
    # Fixed when the update was trained: the round's terms required secure aggregation (the plan, the node policy
    # or the round's own phase). Such an update is never sent in the clear, whatever the coordinator says later.
    secure: bool = False


@dataclass
class ParticipationState:
    plan_sha256: str
    rounds: dict[int, RoundRecord] = field(default_factory=dict)
    candidates: list[int] = field(default_factory=list)  # global versions already offered as local candidates

    @property
    def rounds_trained(self) -> int:
        return len(self.rounds)


class StateStore:
    """Loads and saves one plan's ``ParticipationState`` and its pending update file."""

    def __init__(self, home: Path, plan_sha256: str) -> None:
        self.folder = Path(home) / "federation" / "participation"
        self.path = self.folder / f"{plan_sha256}.json"
        self.updates = self.folder / plan_sha256
        self.plan_sha256 = plan_sha256

    def load(self) -> ParticipationState:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return ParticipationState(self.plan_sha256)
        except (OSError, ValueError):  # damaged: start afresh; the ledger (DB) still prevents a second ε
            return ParticipationState(self.plan_sha256)
        # A file from before ``secure`` existed loads it as False: delivery re-checks plan and policy anyway.
        rounds = {int(k): RoundRecord(**v) for k, v in data.get("rounds", {}).items()}
        return ParticipationState(self.plan_sha256, rounds, [int(v) for v in data.get("candidates", [])])

    def save(self, state: ParticipationState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {"plan_sha256": state.plan_sha256, "candidates": state.candidates,
                "rounds": {str(k): asdict(v) for k, v in state.rounds.items()}}
        write_private(self.path, json.dumps(data, indent=1, sort_keys=True).encode())

    def update_path(self, round_id: int) -> Path:
        return self.updates / f"round-{round_id}.safetensors"

    def save_update(self, round_id: int, data: bytes) -> None:
        write_private(self.update_path(round_id), data)

    def load_update(self, round_id: int) -> bytes | None:
        try:
            return self.update_path(round_id).read_bytes()
        except FileNotFoundError:
            return None

    def drop_update(self, round_id: int) -> None:
        path = self.update_path(round_id)
        if path.exists():
            os.remove(path)
