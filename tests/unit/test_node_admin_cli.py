"""The headless admin commands: ``pneumodesk datasets``, ``policy``, ``plans``, ``models`` and ``egress``, run
in-process against a real node store with the password on stdin."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from pneumodesk.cli import main
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.node import NodeService
from tests.builders import make_tiny_bundle, write_labelled_folder
from tests.node_builders import CLINICIAN, OWNER, seed_node


@pytest.fixture
def home(tmp_path):
    seed_node(tmp_path / "home")
    return tmp_path / "home"


def run(monkeypatch, capsys, home, *argv: str, user=OWNER) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(user[2] + "\n"))
    status = main(["--home", str(home), *argv, "--user", user[0], "--password-stdin"])
    out = capsys.readouterr()
    return status, out.out, out.err


def plan_file(tmp_path, **changes):
    fields = {"name": "winter round", "architecture": "pneumonet-tiny", "input_size": 64,
              "base_model_sha256": "a" * 64, "learning_rate": 0.1, "batch_size": 8, "local_epochs": 1,
              "rounds": 3, "min_nodes": 3}
    plan = TrainingPlan(**{**fields, **changes})
    path = tmp_path / f"plan-{plan.sha256[:8]}.json"
    path.write_bytes(plan.canonical_json())
    return plan, path


def test_datasets_add_list_remove(tmp_path, home, monkeypatch, capsys):
    data = write_labelled_folder(tmp_path / "data", per_class=10, rng=np.random.default_rng(1))
    (data / "NORMAL" / "broken.png").write_bytes(b"not a png")

    added = run(monkeypatch, capsys, home, "datasets", "add", "Ward 4", str(data))
    listed = run(monkeypatch, capsys, home, "datasets", "list")
    denied = run(monkeypatch, capsys, home, "datasets", "list", user=CLINICIAN)
    removed = run(monkeypatch, capsys, home, "datasets", "remove", "1")
    missing = run(monkeypatch, capsys, home, "datasets", "remove", "1")

    assert added[0] == 0 and "Registered dataset 1" in added[1] and "10 normal, 10 pneumonia" in added[1]
    assert "unreadable: NORMAL/broken.png" in added[1]
    assert listed[0] == 0 and "Ward 4" in listed[1]
    assert denied[0] == 1 and "does not allow you to manage datasets" in denied[2]
    assert removed[0] == 0 and missing[0] == 1 and "There is no dataset 1" in missing[2]


def test_policy_show_and_set(home, monkeypatch, capsys):
    changed = run(monkeypatch, capsys, home, "policy", "set", "epsilon_cap_per_dataset=6", "min_nodes_per_round=2",
                  "require_secure_aggregation=no")
    shown = run(monkeypatch, capsys, home, "policy", "show", user=CLINICIAN)
    bad = run(monkeypatch, capsys, home, "policy", "set", "max_rounds=many")
    denied = run(monkeypatch, capsys, home, "policy", "set", "max_rounds=3", user=CLINICIAN)

    assert changed[0] == 0 and "Policy saved" in changed[1]
    assert shown[0] == 0 and "epsilon_cap_per_dataset = 6.0" in shown[1] and "min_nodes_per_round = 2" in shown[1]
    assert "require_secure_aggregation = False" in shown[1]
    assert bad[0] == 1 and "max_rounds cannot be 'many'" in bad[2]
    assert denied[0] == 1 and "approve training" in denied[2]


def test_plans_show_approve_list_withdraw_and_refusal(tmp_path, home, monkeypatch, capsys):
    data = write_labelled_folder(tmp_path / "data", per_class=12, rng=np.random.default_rng(2))
    run(monkeypatch, capsys, home, "datasets", "add", "Ward", str(data))
    plan, path = plan_file(tmp_path)
    _, outside = plan_file(tmp_path, secure_aggregation=False)

    shown = run(monkeypatch, capsys, home, "plans", "show", str(path), "--dataset", "1")
    no_coordinator = run(monkeypatch, capsys, home, "plans", "approve", str(path), "--dataset", "1")
    approved = run(monkeypatch, capsys, home, "plans", "approve", str(path), "--dataset", "1",
                   "--coordinator", "https://127.0.0.1:8443")
    refused = run(monkeypatch, capsys, home, "plans", "approve", str(outside), "--dataset", "1",
                  "--coordinator", "https://127.0.0.1:8443")
    _, another = plan_file(tmp_path, learning_rate=0.2)
    beside = run(monkeypatch, capsys, home, "plans", "show", str(another), "--dataset", "1")
    listed = run(monkeypatch, capsys, home, "plans", "list")
    withdrawn = run(monkeypatch, capsys, home, "plans", "withdraw", plan.sha256[:12])
    reapproved = run(monkeypatch, capsys, home, "plans", "approve", plan.sha256, "--dataset", "1",
                     "--coordinator", "https://127.0.0.1:8443")

    assert shown[0] == 0 and "ε = 8.00 in total" in shown[1] and "within this node's policy" in shown[1]
    assert no_coordinator[0] == 1 and "not enrolled" in no_coordinator[2]
    assert approved[0] == 0 and f"Approved plan {plan.sha256}" in approved[1]
    assert refused[0] == 1 and "does not use secure aggregation" in refused[2]
    assert "spent ε = 0.00 so far and other approved plans may still spend ε = 8.00" in beside[1]
    assert "other approved plans may still spend ε = 0.00" in shown[1]
    assert listed[0] == 0 and "ACTIVE" in listed[1]
    assert withdrawn[0] == 0 and reapproved[0] == 0
    node = NodeService.open(home)
    approval = node.approvals.active(plan.sha256)
    assert approval is not None and approval.epsilon_total == pytest.approx(8.0, abs=0.05)
    node.close()


def test_models_list_accept_reject_restore(tmp_path, home, monkeypatch, capsys):
    node = NodeService.open(home)
    candidate = node.models.add_candidate(make_tiny_bundle(seed=4).save(tmp_path / "new"), "federation", None, 1, 2,
                                          {"roc_auc": 0.93}, {"roc_auc": 0.9})
    node.close()

    listed = run(monkeypatch, capsys, home, "models", "list", user=CLINICIAN)
    denied = run(monkeypatch, capsys, home, "models", "accept", str(candidate.id), user=CLINICIAN)
    accepted = run(monkeypatch, capsys, home, "models", "accept", str(candidate.id))
    restored = run(monkeypatch, capsys, home, "models", "restore", "1")
    rejected = run(monkeypatch, capsys, home, "models", "reject", str(candidate.id))

    assert listed[0] == 0 and "candidate" in listed[1] and "AUC 0.930 (was 0.900)" in listed[1]
    assert denied[0] == 1
    assert accepted[0] == 0 and f"prediction model is now model {candidate.id}" in accepted[1]
    assert restored[0] == 0 and "prediction model is now model 1" in restored[1]
    assert rejected[0] == 1 and "only a new (candidate) model can be rejected" in rejected[2]


def test_egress_print_and_csv(tmp_path, home, monkeypatch, capsys):
    node = NodeService.open(home)
    node.egress.record("POST", "/api/v1/enrol", 512, 256, 200, "enrolment")
    node.close()

    printed = run(monkeypatch, capsys, home, "egress")
    exported = run(monkeypatch, capsys, home, "egress", "--csv", str(tmp_path / "egress.csv"))
    denied = run(monkeypatch, capsys, home, "egress", user=CLINICIAN)

    assert printed[0] == 0 and "/api/v1/enrol" in printed[1] and "512 bytes sent" in printed[1]
    assert exported[0] == 0
    rows = list(csv.DictReader((tmp_path / "egress.csv").open(encoding="utf-8")))
    assert [(r["endpoint"], r["bytes_sent"], r["purpose"]) for r in rows] == [("/api/v1/enrol", "512", "enrolment")]
    assert denied[0] == 1
