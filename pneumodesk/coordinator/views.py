"""Conversions from database rows to the protocol's message schemas (one place, so API and CLI agree)."""

from __future__ import annotations

import json

from pneumodesk.federation.messages import ModelVersionInfo, NodeInfo, PlanSummary, RoundInfo
from pneumodesk.federation.tensors import sha256_hex
from pneumodesk.federation.vocabulary import MembershipStatus, PlanStatus, RoundPhase, RoundState

from .db import ModelVersion, Node, Plan, Round


def node_info(node: Node) -> NodeInfo:
    return NodeInfo(node_id=node.id, name=node.name, status=MembershipStatus(node.status),
                    created=node.created.isoformat(), public_key_sha256=sha256_hex(node.public_key))


def plan_summary(plan: Plan) -> PlanSummary:
    return PlanSummary(plan_sha256=plan.sha256, name=plan.name, published=plan.published.isoformat(),
                       status=PlanStatus(plan.status), plan=json.loads(plan.canonical_json))


def round_info(round_: Round, model: ModelVersion, updates: int, min_nodes: int) -> RoundInfo:
    return RoundInfo(
        round_id=round_.id, plan_sha256=round_.plan_sha256, number=round_.number, state=RoundState(round_.state),
        phase=RoundPhase(round_.phase), model_version=model.version, model_sha256=model.sha256,
        deadline=round_.deadline.isoformat(), updates_received=updates, min_nodes=min_nodes,
        result_version=round_.result_version, revision=f"{round_.id}:{round_.revision}", reason=round_.reason,
    )


def model_info(model: ModelVersion) -> ModelVersionInfo:
    return ModelVersionInfo(
        version=model.version, sha256=model.sha256, architecture=model.architecture,
        created=model.created.isoformat(), parent_version=model.parent_version, plan_sha256=model.plan_sha256,
        round_number=model.round_number, contributors=model.contributors, size_bytes=model.size_bytes,
    )
