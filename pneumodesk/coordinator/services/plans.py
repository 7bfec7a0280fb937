"""Training plans: publishing (validated, stored under their hash, first round opened) and reading them back.

Invariants: a plan is published once (its sha256 is its key); its base model must be a model version of this
coordinator with the plan's architecture and input size; a secure plan needs at least two nodes and a number format
whose sum fits a 32-bit word. Publishing, its audit entry and the first round commit together.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from pneumodesk.federation.errors import PlanError
from pneumodesk.federation.messages import PlanSummary
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.vocabulary import PlanStatus

from ..audit import SYSTEM, AuditLog
from ..db import ModelVersion, Plan, utcnow
from ..errors import Conflict, NotFound
from ..orchestrator import RoundOrchestrator
from ..views import plan_summary


class PlanService:
    def __init__(self, sessions: sessionmaker[Session], audit: AuditLog, rounds: RoundOrchestrator,
                 notify: Callable[[], None]) -> None:
        self._sessions, self._audit, self._rounds, self._notify = sessions, audit, rounds, notify

    def publish(self, plan_json: bytes | str, *, actor: str = SYSTEM) -> PlanSummary:
        """Validate a plan, store it under its hash and open its first round."""
        from pneumodesk.model import architecture_names  # torch, only when needed

        plan = TrainingPlan.from_json_bytes(plan_json)
        if plan.secure_aggregation and plan.min_nodes < 2:
            raise PlanError("min_nodes must be at least 2 with secure aggregation: the sum of one update is that "
                            "update.")
        if plan.secure_aggregation:  # QuantisationError (422) unless the sum fits a 32-bit word
            from pneumodesk.federation.secagg import QuantisationSpec

            QuantisationSpec.for_round(plan.min_nodes, plan.secure_aggregation_clip,
                                       plan.secure_aggregation_max_examples)
        if plan.architecture not in architecture_names():
            raise PlanError(f"Unknown architecture {plan.architecture!r}; known: {', '.join(architecture_names())}.")
        sha = plan.sha256
        with self._rounds.lock, self._sessions() as session:
            base = session.scalars(select(ModelVersion).where(ModelVersion.sha256 == plan.base_model_sha256)
                                   .order_by(ModelVersion.version.desc())).first()
            if base is None:
                raise PlanError("The plan's base_model_sha256 is not a model version of this coordinator "
                                "(see `models list`).")
            card = json.loads(base.card_json)
            if base.architecture != plan.architecture or card.get("input_size") != plan.input_size:
                raise PlanError(f"The base model is {base.architecture} at {card.get('input_size')} px; the plan "
                                f"says {plan.architecture} at {plan.input_size} px.")
            if session.get(Plan, sha) is not None:
                raise Conflict(f"Plan {sha[:12]}… is already published.")
            row = Plan(sha256=sha, name=plan.name, canonical_json=plan.canonical_json().decode(),
                       base_version=base.version, status=PlanStatus.ACTIVE.value, published=utcnow())
            session.add(row)
            session.flush()
            self._rounds.open_round(session, row, 1, base.version)
            self._audit.add(session, actor, "plan.publish", sha, {"name": plan.name, "base_version": base.version,
                                                                  "rounds": plan.rounds,
                                                                  "min_nodes": plan.min_nodes})
            session.commit()
            summary = plan_summary(row)
        self._notify()
        return summary

    def list(self) -> list[PlanSummary]:
        with self._sessions() as session:
            return [plan_summary(p) for p in session.scalars(select(Plan).order_by(Plan.published))]

    def get(self, sha: str) -> PlanSummary:
        with self._sessions() as session:
            plan = session.get(Plan, sha)
            if plan is None:
                raise NotFound("There is no plan with this sha256.")
            return plan_summary(plan)
