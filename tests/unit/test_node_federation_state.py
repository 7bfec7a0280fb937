"""Federation membership, the egress log and the local model registry: permissions, audit, append-only egress,
the bundled default as model 1, and accept / reject / restore of candidates."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3

import pytest

from pneumodesk.model import load_bundle
from pneumodesk.node import (
    Membership,
    MembershipError,
    ModelRegistryError,
    NodeService,
    PermissionDenied,
)
from tests.builders import make_tiny_bundle
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in


@pytest.fixture
def node(tmp_path, tiny_bundle_dir):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home", default_bundle=tiny_bundle_dir)
    yield service
    service.close()


@pytest.fixture
def owner(tmp_path, node):
    return sign_in(tmp_path / "home", OWNER[0], OWNER[2])


@pytest.fixture
def clinician(tmp_path, node):
    return sign_in(tmp_path / "home", CLINICIAN[0], CLINICIAN[2])


def membership(tmp_path, status="pending") -> Membership:
    return Membership("https://127.0.0.1:8443", "federation-a", "node-7", "St Elsewhere", "d" * 64,
                      tmp_path / "home" / "federation" / "ca.pem", status, dt.datetime(2026, 11, 27, tzinfo=dt.UTC))


def test_membership_is_saved_status_changes_are_audited_and_leaving_forgets_it(tmp_path, node, owner, clinician):
    assert node.membership.get() is None
    with pytest.raises(PermissionDenied, match="manage the federation"):
        node.membership.save(clinician, membership(tmp_path))
    with pytest.raises(MembershipError, match="not enrolled"):
        node.membership.set_status("approved")

    node.membership.save(owner, membership(tmp_path))
    node.membership.set_status("approved")
    node.membership.set_status("approved")  # no change, no entry

    assert node.membership.get() == membership(tmp_path, "approved")
    with pytest.raises(MembershipError, match="Unknown membership status"):
        node.membership.set_status("maybe")  # type: ignore[arg-type]
    node.membership.leave(owner)
    assert node.membership.get() is None
    actions = [(r.user, r.action) for r in reversed(node.audit.read()) if r.action.startswith("federation")]
    assert actions == [(OWNER[0], "federation_enrolled"), ("node", "federation_status"), (OWNER[0], "federation_left")]


def test_egress_is_recorded_without_query_strings_totalled_exported_and_append_only(tmp_path, node, owner,
                                                                                     clinician):
    node.egress.record("post", "/api/v1/rounds/3/updates?token=secret", 4096, 120, 201, "model update")
    node.egress.record("GET", "/api/v1/plans", 300, 2048, None, "plans")

    records = node.egress.read(owner)
    out = node.egress.export_csv(owner, tmp_path / "egress.csv")

    assert [(r.method, r.endpoint, r.status) for r in records] == [("GET", "/api/v1/plans", None),
                                                                   ("POST", "/api/v1/rounds/3/updates", 201)]
    assert node.egress.totals() == {"requests": 2, "bytes_sent": 4396, "bytes_received": 2168}
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [row["endpoint"] for row in rows] == ["/api/v1/rounds/3/updates", "/api/v1/plans"]
    assert "secret" not in out.read_text(encoding="utf-8")
    assert node.audit.read(action="export")[0].details == {"count": 2}
    with pytest.raises(PermissionDenied, match="manage the federation or read the audit log"):
        node.egress.read(clinician)
    with sqlite3.connect(tmp_path / "home" / "node.sqlite3") as db:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("delete from egress_log")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("update egress_log set bytes_sent = 0")


def test_the_default_model_is_entry_one_and_active_copied_under_home(tmp_path, node, tiny_bundle_dir):
    active = node.models.active()

    assert active.id == 1 and active.status == "active" and active.source == "bundled default"
    assert node.models.active_bundle_dir() == tmp_path / "home" / "models" / "1"
    assert load_bundle(node.models.active_bundle_dir()).card == load_bundle(tiny_bundle_dir).card
    assert [m.id for m in node.models.list()] == [1]
    assert node.audit.read(action="model_registered")[0].user == "node"


def test_candidates_are_accepted_rejected_and_earlier_models_restored(tmp_path, node, owner, clinician):
    newer = make_tiny_bundle(seed=1).save(tmp_path / "incoming-1")
    other = make_tiny_bundle(seed=2).save(tmp_path / "incoming-2")
    first = node.models.add_candidate(newer, "federation", "e" * 64, 2, 5, {"roc_auc": 0.91}, {"roc_auc": 0.88})
    second = node.models.add_candidate(other, "federation", "e" * 64, 3, 6, {"roc_auc": 0.80}, {"roc_auc": 0.88})

    assert (first.status, first.global_version, first.metrics, first.baseline_metrics) == (
        "candidate", 5, {"roc_auc": 0.91}, {"roc_auc": 0.88})
    assert node.models.active().id == 1
    with pytest.raises(PermissionDenied, match="approve training"):
        node.models.accept(clinician, first.id)

    accepted = node.models.accept(owner, first.id)
    rejected = node.models.reject(owner, second.id)

    assert accepted.status == "active" and accepted.decided_by == OWNER[0]
    assert node.models.active_bundle_dir() == tmp_path / "home" / "models" / str(first.id)
    assert {m.id: m.status for m in node.models.list()} == {1: "retired", first.id: "active", second.id: "rejected"}
    with pytest.raises(ModelRegistryError, match="only a candidate model can be accepted"):
        node.models.accept(owner, second.id)
    with pytest.raises(ModelRegistryError, match="only a retired model can be restored"):
        node.models.restore(owner, second.id)
    assert rejected.status == "rejected"

    restored = node.models.restore(owner, 1)

    assert restored.status == "active" and node.models.active().id == 1
    assert node.models.get(first.id).status == "retired"
    assert load_bundle(node.models.get(first.id).bundle_dir).state_dict.keys()  # still on disk, intact
    actions = [r.action for r in reversed(node.audit.read()) if r.action.startswith("model_")]
    assert actions == ["model_registered", "model_candidate", "model_candidate", "model_accepted", "model_rejected",
                       "model_restored"]


def test_a_damaged_candidate_is_refused(tmp_path, node):
    damaged = make_tiny_bundle(seed=3).save(tmp_path / "damaged")
    weights = damaged / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"\x00" * 8)

    with pytest.raises(ModelRegistryError, match="cannot be added"):
        node.models.add_candidate(damaged, "federation", None, None, None, {}, {})
    assert [m.id for m in node.models.list()] == [1]
