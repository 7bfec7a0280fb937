"""Test harness for hospital nodes: a real coordinator over TLS (``client.local_federation``) and real node homes.

Small on purpose: 32 px images of synthetic learnable X-rays, the tiny architecture, one local epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pneumodesk.client.local_federation import LocalCoordinator, LocalHospital
from pneumodesk.client.transport import EgressEvent
from pneumodesk.federation.plan import TrainingPlan
from tests.builders import write_labelled_folder


def make_plan(coordinator: LocalCoordinator, *, rounds: int = 2, min_nodes: int = 3, dp: bool = True,
              target_epsilon: float | None = 4.0, name: str = "e2e plan", deadline: int = 600,
              **changes: object) -> TrainingPlan:
    base = coordinator.models()[0]
    dp_settings = {"enabled": dp, "target_epsilon": target_epsilon, "noise_multiplier": 1.0, "max_grad_norm": 1.0}
    return TrainingPlan.model_validate({
        "name": name, "architecture": "pneumonet-tiny", "input_size": 32, "base_model_sha256": base.sha256,
        "learning_rate": 0.05, "batch_size": 8, "local_epochs": 1, "rounds": rounds, "min_nodes": min_nodes,
        "round_deadline_seconds": deadline, "secure_aggregation": False, "dp": dp_settings, **changes,
    })


def hospital_data(root: Path, index: int, per_class: int = 12) -> Path:
    return write_labelled_folder(root / f"data-{index}", per_class=per_class, rng=np.random.default_rng(100 + index))


class Recorder:
    """Every request each node sent, exactly as it left (body and headers), by hospital."""

    def __init__(self) -> None:
        self.events: dict[str, list[EgressEvent]] = {}

    def for_hospital(self, name: str):  # type: ignore[no-untyped-def]
        events = self.events.setdefault(name, [])
        return events.append


def ready_hospitals(coordinator: LocalCoordinator, root: Path, count: int, *, recorder: Recorder | None = None,
                    per_class: int = 12) -> list[tuple[LocalHospital, int]]:
    """Hospitals enrolled and approved by the operator, each with its dataset registered and a policy that allows
    plain-FedAvg plans (this coordinator version has no secure aggregation yet). Returns (hospital, dataset id)."""
    out = []
    for i in range(count):
        hospital = LocalHospital.create(root / f"hospital-{i}", f"Hospital {i}")
        hospital.enrol(coordinator, recorder=recorder.for_hospital(hospital.name) if recorder else None)
        dataset = hospital.register_dataset(hospital_data(root, i, per_class))
        hospital.set_policy(require_secure_aggregation=False, min_nodes_per_round=1)
        out.append((hospital, dataset.id))
    return out


@pytest.fixture(name="node_coordinator")
def node_coordinator_fixture(tmp_path: Path, tiny_bundle_dir: Path) -> Iterator[LocalCoordinator]:
    coordinator = LocalCoordinator.create(tmp_path / "coordinator", tiny_bundle_dir).start()
    yield coordinator
    coordinator.stop()


@pytest.fixture(name="shared_node_coordinator", scope="module")
def shared_node_coordinator_fixture(tmp_path_factory: pytest.TempPathFactory,
                                    tiny_bundle_dir: Path) -> Iterator[LocalCoordinator]:
    """One coordinator for a module's tests that neither stop it nor share plans (each names its own)."""
    coordinator = LocalCoordinator.create(tmp_path_factory.mktemp("shared") / "coordinator", tiny_bundle_dir).start()
    yield coordinator
    coordinator.stop()
