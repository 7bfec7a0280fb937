"""End to end over real TLS: a hospital's clinicians' confirmed readings become the Confirmed cases dataset, its
admin approves a plan for that dataset, and the node trains the plan's round on those images — those still the images
that were read (a file changed since is left out, and the privacy cost is that of the images used) — and the
coordinator makes the next global model from its update."""

from __future__ import annotations

import hashlib

from pneumodesk.client import EngineOptions, EngineStage
from pneumodesk.client.local_federation import LocalHospital, run_engines
from pneumodesk.node.readings import Reading
from pneumodesk.training.privacy import sample_rate_for
from tests.builders import chest_like, write_png

from .node_harness import hospital_data, make_plan, node_coordinator_fixture  # noqa: F401 - fixture


def test_a_plan_approved_for_the_confirmed_cases_trains_on_those_images(node_coordinator, tmp_path):
    hospital = LocalHospital.create(tmp_path / "hospital", "Hospital C")
    hospital.enrol(node_coordinator)
    hospital.set_policy(require_secure_aggregation=False, min_nodes_per_round=1)
    service, owner = hospital.service, hospital.owner
    folder = hospital_data(tmp_path, 0, per_class=12)
    for reading, name in ((Reading.NORMAL, "NORMAL"), (Reading.PNEUMONIA, "PNEUMONIA")):
        for path in sorted((folder / name).iterdir()):
            service.readings.record(owner, hashlib.sha256(path.read_bytes()).hexdigest(), path, reading)
    (tmp_path / "unsure").mkdir()
    for index in range(3):  # read as unsure: never a label, never trained on
        path = write_png(tmp_path / "unsure" / f"scan_{index}.png", chest_like(32, 32, seed=index))
        service.readings.record(owner, hashlib.sha256(path.read_bytes()).hexdigest(), path, Reading.UNSURE)
    dataset = service.confirmed_cases.register(owner)
    assert (dataset.normal, dataset.pneumonia) == (12, 12)
    training = service.datasets.files(dataset.id, "training")
    assert len(training) == dataset.training_count and all(path.is_relative_to(folder) for path, _ in training)
    changed = training[0][0]
    write_png(changed, chest_like(32, 32, seed=999))  # overwritten since it was read: left out of training
    plan = make_plan(node_coordinator, rounds=1, min_nodes=1)
    node_coordinator.publish(plan)
    approval = hospital.approve_plan(plan, dataset.id)
    assert approval.dataset_id == dataset.id

    (result,) = run_engines([hospital.engine(plan.sha256, options=EngineOptions(poll_timeout=10))], timeout=300)

    assert result.phase is EngineStage.FINISHED and result.rounds_trained == 1, result.message
    (entry,) = service.ledger.entries(dataset.id)  # the round's ε is charged to the confirmed cases
    assert entry.plan_sha256 == plan.sha256 and entry.round_number == 1
    assert entry.sample_rate == sample_rate_for(plan.batch_size, dataset.training_count - 1)
    versions = node_coordinator.models()
    assert [m.version for m in versions] == [1, 2] and versions[-1].contributors == 1
    assert node_coordinator.weights(2) != node_coordinator.weights(1)
    assert [r.state for r in node_coordinator.rounds()] == ["complete"]
