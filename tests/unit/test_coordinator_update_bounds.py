"""One node cannot take over the global model: a capped example count, finite updates within an L2 bound, a
refused non-finite aggregate, and range checks on what secure aggregation decodes (issue 13, finding 7)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from pneumodesk.coordinator.errors import InvalidInput
from pneumodesk.coordinator.running_sums import RunningSum
from pneumodesk.coordinator.safetensors_io import tensor_views
from pneumodesk.coordinator.service import CoordinatorService
from pneumodesk.coordinator.setup import initialise
from pneumodesk.federation import TrainingPlan, state_dict_from_bytes, state_dict_to_bytes
from pneumodesk.federation.secagg import QuantisationError, QuantisationSpec, decode, encode

PASSWORD = "a long enough password"


@pytest.fixture
def service(tmp_path, tiny_bundle_dir):
    initialise(tmp_path / "c", hosts=[], port=0, operator="admin", password=PASSWORD, model=tiny_bundle_dir)
    service = CoordinatorService.open(tmp_path / "c")
    yield service
    service.close()


def _round(service: CoordinatorService, **changes: object) -> tuple[int, str, dict[str, np.ndarray]]:
    code = service.create_enrolment_code().code
    key = base64.urlsafe_b64encode(bytes(32 * [1])).rstrip(b"=").decode()
    node = service.approve_node(service.enrol(code, "h0", key).node_id).node_id
    base = service.list_models()[0]
    plan = {"name": "p", "architecture": "pneumonet-tiny", "input_size": 32, "base_model_sha256": base.sha256,
            "learning_rate": 0.1, "rounds": 1, "min_nodes": 2, "secure_aggregation": False, **changes}
    sha = service.publish_plan(json.dumps(plan)).plan_sha256
    weights, _ = service.model_weights(1)
    return service.join(sha, node).round_id, node, state_dict_from_bytes(weights)


def _shifted(base: dict[str, np.ndarray], by: float) -> bytes:
    return state_dict_to_bytes({k: v + np.asarray(by, dtype=v.dtype) for k, v in base.items()})


def test_a_count_above_the_plans_cap_is_refused(service):
    round_id, node, base = _round(service, secure_aggregation_max_examples=100)
    with pytest.raises(InvalidInput, match="cap of 100"):
        service.submit_update(round_id, node, _shifted(base, 0.001), 1_000_000_000, None)
    assert service.submit_update(round_id, node, _shifted(base, 0.001), 100, None).counted


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_an_update_with_non_finite_values_is_refused(service, value):
    round_id, node, base = _round(service)
    poisoned = dict(base)
    name = next(k for k, v in base.items() if np.issubdtype(v.dtype, np.floating))
    poisoned[name] = base[name].copy()
    poisoned[name].reshape(-1)[0] = value
    with pytest.raises(InvalidInput, match="NaN or infinite"):
        service.submit_update(round_id, node, state_dict_to_bytes(poisoned), 5, None)


def test_an_update_beyond_the_plans_norm_bound_is_refused(service):
    round_id, node, base = _round(service, max_update_norm=1.0)
    with pytest.raises(InvalidInput, match="bound of 1"):
        service.submit_update(round_id, node, _shifted(base, 1.0), 5, None)
    assert service.submit_update(round_id, node, _shifted(base, 1e-4), 5, None).counted  # norm ≈ 0.016


def test_a_non_finite_aggregate_is_never_written():
    running = RunningSum()
    finite = {"w": np.full(4, 3e38, dtype=np.float32)}
    running.add("a", tensor_views(state_dict_to_bytes(finite)), 1)
    running.add("b", {"w": np.array([np.inf, 0, 0, 0], dtype=np.float32)}, 1)
    with pytest.raises(ValueError, match="not finite"):
        running.write()


def test_the_node_clips_its_update_to_the_plans_norm():
    from pneumodesk.federation.tensors import clip_update_norm, update_norm

    base = {"w": np.zeros(100, dtype=np.float32), "steps": np.array([3], dtype=np.int64)}
    update = {"w": np.full(100, 10.0, dtype=np.float32), "steps": np.array([4], dtype=np.int64)}
    clipped = clip_update_norm(update, base, 5.0)
    assert update_norm(clipped, base) <= 5.0 and update_norm(clipped, base) == pytest.approx(5.0, rel=1e-5)
    assert np.allclose(clipped["w"], 0.5) and clipped["steps"][0] == 4
    assert clip_update_norm({"w": np.full(100, 0.1, dtype=np.float32), "steps": update["steps"]}, base, 5.0)["w"][0] \
        == np.float32(0.1)


def test_the_norm_bound_leaves_older_plans_hashes_alone():
    plan = {"name": "p", "architecture": "a", "input_size": 32, "base_model_sha256": "ab" * 32,
            "learning_rate": 0.1, "rounds": 1, "min_nodes": 2}
    default, tight = TrainingPlan.model_validate(plan), TrainingPlan.model_validate({**plan, "max_update_norm": 2.0})
    assert b"max_update_norm" not in default.canonical_json()  # what a plan published before the field hashed to
    assert b'"max_update_norm":2.0' in tight.canonical_json() and tight.sha256 != default.sha256


def test_a_secure_aggregate_with_a_forged_count_word_or_range_is_refused():
    spec = QuantisationSpec.for_round(3, 1.0, 100)
    honest = [encode(np.full(4, 0.5), 100, spec) for _ in range(3)]
    total = np.sum(honest, axis=0, dtype=spec.unsigned)
    assert decode(total, spec)[1] == 300
    forged_count = total.copy()
    forged_count[-1] = 10**6  # one node claimed a million examples in its count word
    with pytest.raises(QuantisationError, match="examples"):
        decode(forged_count, spec)
    forged_value = total.copy()
    forged_value[0] = (int(total[0]) + 300 * 2**spec.fraction_bits) % 2**spec.word_bits  # mean 1.5: beyond ±clip
    with pytest.raises(QuantisationError, match="clip range"):
        decode(forged_value, spec)
