"""The node policy: the bounds an admin sets on what any training plan may do on this node.

Invariants: a plan outside the policy is refused before anyone is asked to approve it (``plan_violations`` lists
every broken rule in plain words, ``[]`` means within policy); the policy is stored in the node store (one row,
canonical JSON) and every change is audited with the fields that changed. ε figures are computed by the training
layer (``training.privacy``) and passed in as numbers: this module does no privacy maths.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from pneumodesk.federation.plan import TrainingPlan

from .accounts import AccountService
from .audit import AuditLog
from .errors import PolicyError
from .models import PolicyRow, utcnow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore


def _all_architectures() -> tuple[str, ...]:
    from pneumodesk.model.architectures import architecture_names  # torch: only when a default is built

    return tuple(architecture_names())


@dataclass(frozen=True)
class NodePolicy:
    """What a plan may ask of this node. JSON round trip: ``to_json_dict`` / ``from_json_dict``."""

    epsilon_cap_per_dataset: float = 10.0
    max_delta: float = 1e-5
    require_dp: bool = True
    require_secure_aggregation: bool = True
    allowed_architectures: tuple[str, ...] = field(default_factory=_all_architectures)
    max_local_epochs: int = 5
    max_rounds: int = 200
    max_learning_rate: float = 1.0
    min_batch_size: int = 8
    max_batch_size: int = 512
    min_nodes_per_round: int = 3  # also the fewest nodes of every secure-aggregation set (roster, U2, U3)
    min_recognised_peers: int = 0  # roster peers whose key this hospital's admin recognised; 0 = not required

    def to_json_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["allowed_architectures"] = list(self.allowed_architectures)
        return data

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> NodePolicy:
        """Unknown keys are refused; missing keys take the defaults; values are converted to the field's type."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise PolicyError([f"unknown setting {name!r}" for name in unknown])
        values: dict[str, Any] = {}
        problems: list[str] = []
        for name, value in data.items():
            try:
                values[name] = _convert(name, value)
            except (TypeError, ValueError):
                problems.append(f"{name} cannot be {value!r}")
        if problems:
            raise PolicyError(problems)
        return cls(**values)

    def with_settings(self, **changes: Any) -> NodePolicy:
        """A copy with ``changes`` (converted as in ``from_json_dict``)."""
        merged = self.to_json_dict()
        merged.update(changes)
        return NodePolicy.from_json_dict(merged)


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _convert(name: str, value: Any) -> Any:
    """The setting ``name`` as its declared type; strings (from a command line) are parsed."""
    default = NodePolicy.__dataclass_fields__[name]
    kind = default.type
    if name == "allowed_architectures":
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(sorted({str(item).strip() for item in items if str(item).strip()}))
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.strip().lower()]
        raise ValueError(value)
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError(value)
        return int(value)
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(value)
        return number
    raise TypeError(name)  # pragma: no cover - every field is handled above


def policy_problems(policy: NodePolicy) -> list[str]:
    """Why a policy cannot be saved (``[]`` when it can)."""
    from pneumodesk.model.architectures import architecture_names

    problems = []
    if policy.epsilon_cap_per_dataset <= 0:
        problems.append("the privacy budget cap per dataset must be above 0")
    if not 0 < policy.max_delta < 1:
        problems.append("the largest δ must be between 0 and 1")
    unknown = sorted(set(policy.allowed_architectures) - set(architecture_names()))
    if unknown:
        problems.append(f"this PneumoDesk does not know the architecture(s) {', '.join(unknown)}")
    for name in ("max_local_epochs", "max_rounds", "min_batch_size", "min_nodes_per_round"):
        if getattr(policy, name) < 1:
            problems.append(f"{name.replace('_', ' ')} must be at least 1")
    if policy.min_recognised_peers < 0:
        problems.append("min recognised peers cannot be negative")
    if policy.max_learning_rate <= 0:
        problems.append("the largest learning rate must be above 0")
    if policy.min_batch_size > policy.max_batch_size:
        problems.append("the smallest batch size is larger than the largest")
    return problems


def plan_violations(policy: NodePolicy, plan: TrainingPlan, epsilon_total: float | None) -> list[str]:
    """Every rule of ``policy`` that ``plan`` breaks, in plain words; ``[]`` when the plan is within policy.

    ``epsilon_total`` is the whole plan's ε on the chosen dataset (from ``training.privacy``), ``None`` without DP.
    """
    reasons: list[str] = []
    if plan.architecture not in policy.allowed_architectures:
        allowed = ", ".join(policy.allowed_architectures) or "none"
        reasons.append(f"the model architecture {plan.architecture!r} is not allowed here (allowed: {allowed})")
    if policy.require_secure_aggregation and not plan.secure_aggregation:
        reasons.append("the plan does not use secure aggregation, which this node requires")
    if policy.require_dp and not plan.dp.enabled:
        reasons.append("the plan trains without differential privacy, which this node requires")
    if plan.dp.enabled:
        if plan.dp.target_delta > policy.max_delta:
            reasons.append(f"its δ of {plan.dp.target_delta:g} is above this node's largest δ of {policy.max_delta:g}")
        if epsilon_total is None:
            reasons.append("its privacy cost (ε) could not be worked out")
        elif not math.isfinite(epsilon_total) or epsilon_total > policy.epsilon_cap_per_dataset:
            reasons.append(f"the whole plan would spend ε = {epsilon_total:.2f}, more than this node's cap of "
                           f"ε = {policy.epsilon_cap_per_dataset:g} per dataset")
    if plan.local_epochs > policy.max_local_epochs:
        reasons.append(f"it asks for {plan.local_epochs} local epochs per round; at most {policy.max_local_epochs} "
                       "are allowed")
    if plan.rounds > policy.max_rounds:
        reasons.append(f"it asks for {plan.rounds} rounds; at most {policy.max_rounds} are allowed")
    if plan.learning_rate > policy.max_learning_rate:
        reasons.append(f"its learning rate {plan.learning_rate:g} is above the largest allowed, "
                       f"{policy.max_learning_rate:g}")
    if not policy.min_batch_size <= plan.batch_size <= policy.max_batch_size:
        reasons.append(f"its batch size {plan.batch_size} is outside the allowed {policy.min_batch_size} to "
                       f"{policy.max_batch_size}")
    if plan.min_nodes < policy.min_nodes_per_round:
        reasons.append(f"a round may be aggregated with only {plan.min_nodes} hospital(s); this node requires at "
                       f"least {policy.min_nodes_per_round}")
    return reasons


class PolicyService:
    """Read by anyone signed in (``get`` needs no actor); changed only with ``approve_training``."""

    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    def get(self) -> NodePolicy:
        with self.store.session() as session:
            row = session.get(PolicyRow, 1)
            stored = None if row is None else json.loads(row.policy_json)
        return NodePolicy() if stored is None else NodePolicy.from_json_dict(stored)

    def set(self, actor: UserSession, policy: NodePolicy) -> NodePolicy:
        """Save ``policy`` (refused with ``PolicyError`` when inconsistent); audited with the changed settings."""
        self.accounts.require(actor, Permission.APPROVE_TRAINING, "policy")
        problems = policy_problems(policy)
        if problems:
            raise PolicyError(problems)
        before = self.get().to_json_dict()
        after = policy.to_json_dict()
        with self.store.session() as session:
            row = session.get(PolicyRow, 1)
            text = json.dumps(after, sort_keys=True, separators=(",", ":"))
            if row is None:
                session.add(PolicyRow(id=1, policy_json=text, updated=utcnow(), updated_by=actor.username))
            else:
                row.policy_json, row.updated, row.updated_by = text, utcnow(), actor.username
        changed = {key: _scalar(after[key]) for key in sorted(after) if after[key] != before.get(key)}
        self.audit.append(actor.username, "policy_changed", "policy", details=changed)
        return policy


def _scalar(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value
