"""Training plans: schema validation and identity by the sha256 of canonical JSON."""

from __future__ import annotations

import hashlib
import json

import pytest

from pneumodesk.federation import PlanError, TrainingPlan, canonical_plan_json, plan_hash

BASE = {
    "name": "pneumonia v2",
    "architecture": "pneumonet-m",
    "input_size": 224,
    "base_model_sha256": "ab" * 32,
    "learning_rate": 0.01,
    "rounds": 5,
    "min_nodes": 3,
}


def test_hash_is_sha256_of_canonical_json_and_ignores_key_order_and_spacing():
    plan = TrainingPlan.from_json_bytes(json.dumps(BASE))
    reordered = TrainingPlan.from_json_bytes(json.dumps(dict(reversed(list(BASE.items()))), indent=4))
    assert plan_hash(plan) == plan_hash(reordered) == hashlib.sha256(canonical_plan_json(plan)).hexdigest()
    canonical = canonical_plan_json(plan).decode()
    assert " " not in canonical.replace("pneumonia v2", "")
    assert '"secure_aggregation":true' in canonical and '"dp":{' in canonical  # defaults are written out


def test_any_change_changes_the_hash():
    plan = TrainingPlan.from_json_bytes(json.dumps(BASE))
    changed = TrainingPlan.from_json_bytes(json.dumps({**BASE, "learning_rate": 0.02}))
    assert plan.sha256 != changed.sha256


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"extra": "code()"}, "extra"),
        ({"input_size": 4}, "input_size"),
        ({"base_model_sha256": "not-a-hash"}, "base_model_sha256"),
        ({"optimiser": "lbfgs"}, "optimiser"),
        ({"min_nodes": 0}, "min_nodes"),
        ({"dp": {"noise_multiplier": -1}}, "dp.noise_multiplier"),
        ({"optimiser": "adam", "momentum": 0.9}, "momentum"),
    ],
)
def test_invalid_plans_are_refused_with_the_field_named(change, fragment):
    with pytest.raises(PlanError, match="not valid") as caught:
        TrainingPlan.from_json_bytes(json.dumps({**BASE, **change}))
    assert fragment in str(caught.value)


def test_malformed_json_is_a_plan_error():
    with pytest.raises(PlanError):
        TrainingPlan.from_json_bytes(b"{")


def test_secure_aggregation_is_the_default_and_its_threshold_must_be_a_strict_majority():
    plan = TrainingPlan.from_json_bytes(json.dumps(BASE))
    assert plan.secure_aggregation and plan.secure_aggregation_threshold is None  # None: strict majority
    assert plan.secure_aggregation_clip > 0 and plan.secure_aggregation_max_examples >= 1
    assert TrainingPlan.from_json_bytes(json.dumps({**BASE, "secure_aggregation_threshold": 2})).sha256 != plan.sha256
    for threshold in (1, 4):  # min_nodes = 3: t must be 2 or 3
        with pytest.raises(PlanError, match="secure_aggregation_threshold"):
            TrainingPlan.from_json_bytes(json.dumps({**BASE, "secure_aggregation_threshold": threshold}))
    with pytest.raises(PlanError, match="secure_aggregation_threshold"):
        TrainingPlan.from_json_bytes(json.dumps({**BASE, "secure_aggregation": False,
                                                 "secure_aggregation_threshold": 2}))
