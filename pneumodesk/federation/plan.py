"""Declarative training plans (data, never code) and their identity: the sha256 of their canonical JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import PlanError

_SHA256 = r"^[0-9a-f]{64}$"
#: The default L2 bound of one node's update; generous for one local round of a GroupNorm CNN, yet finite.
DEFAULT_MAX_UPDATE_NORM = 10_000.0
#: Fields added after plans were first hashed, with their defaults: written into the canonical JSON only when they
#: differ, so every plan published before a field existed keeps its hash (and its hospitals' approvals).
_LATER_FIELDS: dict[str, object] = {"max_update_norm": DEFAULT_MAX_UPDATE_NORM}


class DifferentialPrivacy(BaseModel):
    """DP-SGD parameters a node applies locally; ``enabled=False`` means plain SGD."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    noise_multiplier: float = Field(default=1.0, ge=0.0, le=100.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0, le=1000.0)
    target_epsilon: float | None = Field(default=8.0, gt=0.0, le=1000.0)
    target_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)


class TrainingPlan(BaseModel):
    """A training plan as published by an operator and approved (by hash) by each hospital's admin.

    Invariants: every field is plain data (no code, no paths); unknown fields are refused so that two parties never
    disagree on what a hash means; the same plan always has the same canonical JSON and therefore the same hash.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    name: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=2000)
    architecture: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    input_size: int = Field(ge=16, le=2048)
    base_model_sha256: str = Field(pattern=_SHA256, description="sha256 of the safetensors weights to start from")
    optimiser: Literal["sgd", "adam", "adamw"] = "sgd"
    learning_rate: float = Field(gt=0.0, le=10.0)
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    weight_decay: float = Field(default=0.0, ge=0.0, le=1.0)
    batch_size: int = Field(default=32, ge=1, le=4096)
    local_epochs: int = Field(default=1, ge=1, le=100)
    dp: DifferentialPrivacy = DifferentialPrivacy()
    rounds: int = Field(ge=1, le=10_000)
    min_nodes: int = Field(ge=1, le=10_000, description="updates needed before a round is aggregated")
    round_deadline_seconds: int = Field(default=3600, ge=5, le=30 * 24 * 3600)
    secure_aggregation: bool = True
    secure_aggregation_threshold: int | None = Field(
        default=None, ge=2, le=10_000,
        description="t: surviving nodes needed to unmask the sum; None = a strict majority of the round's nodes")
    secure_aggregation_clip: float = Field(
        default=1.0, gt=0.0, le=1000.0,
        description="each coordinate of a node's delta (local − global) is clipped to ±clip")
    secure_aggregation_max_examples: int = Field(
        default=10_000, ge=1, le=1_000_000,
        description="the plan's example cap, plain and secure rounds alike: a node reports at most this many examples "
                    "(exactly this many when DP is on, see ``reported_examples``); the coordinator refuses more")
    secure_phase_seconds: int = Field(
        default=120, ge=2, le=24 * 3600, description="deadline of each secure-aggregation phase after key advertising")
    max_update_norm: float = Field(
        default=DEFAULT_MAX_UPDATE_NORM, gt=0.0, le=1e9,
        description="L2 bound of a node's update (local − global floating-point weights): the node clips to it, the "
                    "coordinator refuses a plain update above it")

    @model_validator(mode="after")
    def _sane(self) -> TrainingPlan:
        if self.momentum and self.optimiser != "sgd":
            raise ValueError("momentum applies only to the sgd optimiser")
        threshold = self.secure_aggregation_threshold
        if threshold is not None and not (self.secure_aggregation and self.min_nodes / 2 < threshold <= self.min_nodes):
            raise ValueError("secure_aggregation_threshold needs secure aggregation on and must be a strict majority "
                             "of min_nodes, at most min_nodes")
        return self

    @classmethod
    def from_json_bytes(cls, data: bytes | str) -> TrainingPlan:
        """Parse and validate; raises ``PlanError`` with every problem spelled out."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in item['loc']) or 'plan'}: {item['msg']}" for item in error.errors()
            )
            raise PlanError(f"The training plan is not valid: {problems}.") from None

    @property
    def max_examples_per_node(self) -> int:
        """The plan's public example cap (``secure_aggregation_max_examples``, a name kept for stable hashes)."""
        return self.secure_aggregation_max_examples

    def reported_examples(self, examples: int) -> int:
        """The example count a node reports for FedAvg weighting: a public quantity under DP.

        With DP on, the exact count is outside the DP guarantee, so every node reports the plan's cap itself (all
        nodes weigh the same, and neither a header nor the secure sum's count word reveals a hospital's size);
        without DP, the count capped at ``max_examples_per_node``. Either way no node can claim more weight than the
        cap (the coordinator refuses a larger count)."""
        if self.dp.enabled:
            return self.max_examples_per_node
        return max(1, min(int(examples), self.max_examples_per_node))

    def canonical_json(self) -> bytes:
        return canonical_plan_json(self)

    @property
    def sha256(self) -> str:
        return plan_hash(self)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_plan_json(plan: TrainingPlan) -> bytes:
    """UTF-8 JSON with sorted keys, no whitespace and every default written out (except a later field at its
    default, see ``_LATER_FIELDS``): one text per plan."""
    data = plan.model_dump(mode="json")
    for name, default in _LATER_FIELDS.items():
        if data.get(name) == default:
            del data[name]
    return _canonical(data)


def plan_hash(plan: TrainingPlan) -> str:
    """The plan's identity: lowercase hex sha256 of its canonical JSON."""
    return hashlib.sha256(canonical_plan_json(plan)).hexdigest()
