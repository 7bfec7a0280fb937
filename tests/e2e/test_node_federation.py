"""End to end over real TLS: three hospitals enrol, are approved, approve a plan, train two DP rounds, and the new
global model becomes a local candidate that an admin accepts and that then predicts."""

from __future__ import annotations

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.client.local_federation import run_engines
from pneumodesk.imaging import read_xray
from pneumodesk.inference import Predictor
from pneumodesk.model import load_bundle

from .node_harness import make_plan, node_coordinator_fixture, ready_hospitals  # noqa: F401 - fixture


def test_three_hospitals_two_dp_rounds_then_an_accepted_model_predicts(node_coordinator, tmp_path):
    # Prepare: enrolment → operator approval → datasets → plan approval by each hospital's admin
    hospitals = ready_hospitals(node_coordinator, tmp_path, 3)
    for hospital, _ in hospitals:
        assert hospital.service.membership.get().status == "pending"
    plan = make_plan(node_coordinator, rounds=2, min_nodes=3)
    summary = node_coordinator.publish(plan)
    assert summary.plan_sha256 == plan.sha256
    for hospital, dataset_id in hospitals:
        hospital.approve_plan(plan, dataset_id)
    statuses: dict[str, list[EngineStage]] = {}
    engines = [h.engine(plan.sha256, options=EngineOptions(poll_timeout=10),
                        on_status=lambda s, n=h.name: statuses.setdefault(n, []).append(s.phase))
               for h, _ in hospitals]

    # Execute
    results = run_engines(engines, timeout=300)

    # Assert: every hospital trained both rounds and has one candidate; the coordinator made versions 2 and 3.
    assert [r.phase for r in results] == [EngineStage.FINISHED] * 3, [r.message for r in results]
    assert [r.rounds_trained for r in results] == [2, 2, 2]
    versions = node_coordinator.models()
    assert [m.version for m in versions] == [1, 2, 3] and versions[-1].contributors == 3
    assert [r.state for r in node_coordinator.rounds()] == ["complete", "complete"]
    for (hospital, dataset_id), result in zip(hospitals, results, strict=True):
        service = hospital.service
        assert service.membership.get().status == "approved"
        entries = service.ledger.entries(dataset_id)
        assert [e.round_number for e in entries] == [1, 2]
        assert 0 < service.ledger.spent(dataset_id) <= 4.0 + 1e-6  # the plan's whole ε, RDP-composed
        assert {EngineStage.TRAINING, EngineStage.UPLOADING, EngineStage.EVALUATING} <= set(statuses[hospital.name])
        (candidate_id,) = result.candidates
        candidate = service.models.get(candidate_id)
        assert candidate.status == "candidate" and candidate.global_version == 3
        assert "roc_auc" in candidate.metrics and candidate.baseline_metrics
        # the admin accepts it: it becomes the prediction model and predicts
        service.models.accept(hospital.owner, candidate_id)
        bundle_dir = service.models.active_bundle_dir()
        assert load_bundle(bundle_dir).card.training.get("global_version") == 3
        image = next((tmp_path / "data-0" / "PNEUMONIA").iterdir())
        prediction = Predictor.from_path(bundle_dir).predict(read_xray(image))
        assert 0.0 <= prediction.probability <= 1.0
    egress = hospitals[0][0].service.egress.totals()
    assert egress["requests"] > 5 and egress["bytes_sent"] > 0
