"""End to end through the command line, as an admin of a headless node would: create the Owner, enrol, check the
status, and run one approved round with ``pneumodesk node run --once``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pneumodesk.node import NodeService

from .node_harness import hospital_data, make_plan, node_coordinator_fixture  # noqa: F401 - fixture

PASSWORD = "a long enough admin passphrase"


def pneumodesk(home: Path, *args: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pneumodesk", "--home", str(home), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_enrol_status_and_run_once_from_the_command_line(node_coordinator, tmp_path):
    home = tmp_path / "node"
    assert pneumodesk(home, "accounts", "create-owner", "owner", "--password-stdin",
                      stdin=PASSWORD + "\n").returncode == 0

    enrolled = pneumodesk(home, "node", "enrol", node_coordinator.url, f"--code={node_coordinator.enrolment_code()}",
                          "--ca", str(node_coordinator.ca_path), "--name", "Cottage Hospital", "--user", "owner",
                          "--password-stdin", stdin=PASSWORD + "\n")
    assert enrolled.returncode == 0, enrolled.stderr
    assert "status: pending" in enrolled.stdout and "encrypted file" in enrolled.stdout
    service = NodeService.open(home)
    node_id = service.membership.get().node_id
    node_coordinator.approve(node_id)

    status = pneumodesk(home, "node", "status", "--check", "--json")
    report = json.loads(status.stdout)
    assert (report["status"], report["connection"], report["node_id"]) == ("approved", "reachable", node_id)
    assert report["sent"]["requests"] >= 3

    owner = service.accounts.authenticate("owner", PASSWORD)
    dataset = service.datasets.register(owner, "ward data", hospital_data(tmp_path, 0))
    service.policy.set(owner, service.policy.get().with_settings(require_secure_aggregation=False,
                                                                  min_nodes_per_round=1))
    plan = make_plan(node_coordinator, rounds=1, min_nodes=1, dp=False, target_epsilon=None)
    node_coordinator.publish(plan)
    refused = pneumodesk(home, "node", "run", "--once", "--poll", "5")
    assert refused.returncode == 1 and "No active plan of the federation is approved" in refused.stderr
    service.policy.set(owner, service.policy.get().with_settings(require_dp=False))
    service.approvals.approve(owner, plan, dataset.id, node_coordinator.url, None)

    run = pneumodesk(home, "node", "run", "--once", "--poll", "5", "--json")

    assert run.returncode == 0, run.stdout + run.stderr
    phases = [json.loads(line)["phase"] for line in run.stdout.splitlines()]
    assert phases[0] == "starting" and phases[-1] == "finished"
    assert {"training", "uploading", "evaluating"} <= set(phases)
    assert node_coordinator.rounds()[0].state == "complete"
    assert [m.status for m in service.models.list()].count("candidate") == 1
    service.close()
