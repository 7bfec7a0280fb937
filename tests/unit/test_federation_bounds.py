"""What a node sends: its update clipped to the plan's norm, and a public example count (issue 13, findings 6, 7)."""

from __future__ import annotations

import numpy as np

from pneumodesk.federation import TrainingPlan, state_dict_to_bytes

PLAN = {"name": "p", "architecture": "a", "input_size": 32, "base_model_sha256": "ab" * 32, "learning_rate": 0.1,
        "rounds": 1, "min_nodes": 2, "secure_aggregation_max_examples": 500}


def test_under_dp_the_node_reports_the_plans_cap_not_its_exact_count():
    from pneumodesk.federation.bounds import bounded_update

    base = {"w": np.zeros(4, dtype=np.float32)}
    private = TrainingPlan.model_validate(PLAN)
    assert private.dp.enabled
    for exact in (1, 137, 499, 10_000):
        assert bounded_update(base, exact, state_dict_to_bytes(base), private)[1] == 500  # same for every hospital
    plain = TrainingPlan.model_validate({**PLAN, "dp": {"enabled": False}})
    assert [plain.reported_examples(n) for n in (1, 137, 10_000)] == [1, 137, 500]


def test_the_update_sent_is_clipped_to_the_plans_norm():
    from pneumodesk.federation.bounds import bounded_update

    base = {"w": np.zeros(4, dtype=np.float32)}
    plan = TrainingPlan.model_validate({**PLAN, "max_update_norm": 1.0})
    sent, _ = bounded_update({"w": np.full(4, 3.0, dtype=np.float32)}, 7, state_dict_to_bytes(base), plan)
    assert float(np.linalg.norm(sent["w"])) <= 1.0
