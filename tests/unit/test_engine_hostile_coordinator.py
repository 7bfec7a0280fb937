"""Node ← coordinator at the engine level: a ``ParticipationEngine`` with an approved plan and a registered dataset,
run against a lying coordinator (``tests.lying_coordinator.LyingRound``) that answers one of the engine's requests
with a hostile message.

The property: the engine ends REFUSED or FAILED (or, for a coordinator that vanished, reports UNREACHABLE until it
is stopped) with a plain, typed reason — never "unexpected error" — and

- *refused before training*: the node store (privacy ledger, approvals, model registry and every other table but the
  egress log) is exactly as it was, and nothing was uploaded;
- *refused after training* (the upload's answer is hostile): the one ledger entry recorded before the update left is
  there by design (ε is recorded before the update leaves); nothing else changed, and the trained update is kept
  to be sent again on the next start.
"""

from __future__ import annotations

import base64
import json
import logging
import pickle
import sqlite3
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pneumodesk.client import EngineOptions, EngineStage, ParticipationEngine
from pneumodesk.client.api import CoordinatorClient
from pneumodesk.client.engine_types import EngineResult, EngineStatus
from pneumodesk.client.enrolment import FederationConnection
from pneumodesk.client.keys import NodeKey
from pneumodesk.federation.messages import SHA256_HEADER
from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.federation.tensors import state_dict_to_bytes
from pneumodesk.federation.vocabulary import RefusalReason
from pneumodesk.model import build_model
from pneumodesk.node.store import STORE_FILE
from tests.builders import write_labelled_folder
from tests.hostile_messages import StaticTokens, mutations, store_snapshot
from tests.lying_coordinator import (
    Answer,
    EnrolledNode,
    LyingRound,
    enrolled_node,
    json_answer,
    lying_transport,
    vanish,
)

OPTIONS = EngineOptions(poll_timeout=1, max_rounds=1, candidates="none", retry_delays=(0.01,), seed=1)


def tiny_weights(**changes: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    torch.manual_seed(0)
    model = build_model("pneumonet-tiny")
    state = {name: tensor.detach().numpy().copy() for name, tensor in model.state_dict().items()}
    return {**state, **changes}


BASE = state_dict_to_bytes(tiny_weights())


def make_plan(base_sha256: str) -> TrainingPlan:
    return TrainingPlan.model_validate({
        "name": "hostile engine plan", "architecture": "pneumonet-tiny", "input_size": 32,
        "base_model_sha256": base_sha256, "learning_rate": 0.05, "batch_size": 8, "local_epochs": 1, "rounds": 2,
        "min_nodes": 1, "secure_aggregation": False,
        "dp": {"enabled": True, "target_epsilon": 4.0, "noise_multiplier": 1.0, "max_grad_norm": 1.0}})


@dataclass
class ApprovedNode:
    node: EnrolledNode
    plan: TrainingPlan
    dataset_id: int


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_labelled_folder(tmp_path_factory.mktemp("images") / "data", per_class=6,
                                 rng=np.random.default_rng(5), size=32)


@contextmanager
def approved_node(home: Path, images: Path) -> Iterator[ApprovedNode]:
    """An enrolled node (operator-approved) with a registered dataset and an admin's approval of the plan."""
    from pneumodesk.training.privacy import plan_privacy_cost

    with enrolled_node(home) as node:
        service, owner = node.service, node.owner
        dataset = service.datasets.register(owner, "hostile data", images)
        service.policy.set(owner, service.policy.get().with_settings(require_secure_aggregation=False,
                                                                     min_nodes_per_round=1))
        plan = make_plan(LyingRound("0" * 64, BASE).model_sha256)
        cost = plan_privacy_cost(plan, len(service.datasets.files(dataset.id, "training")))
        membership = service.membership.get()
        assert membership is not None and cost is not None
        service.approvals.approve(owner, plan, dataset.id, membership.coordinator_url, cost.epsilon_total)
        yield ApprovedNode(node, plan, dataset.id)


@pytest.fixture
def approved(tmp_path: Path, images: Path) -> Iterator[ApprovedNode]:
    with approved_node(tmp_path / "home", images) as node:
        yield node


def run_engine(approved: ApprovedNode, coordinator: LyingRound, statuses: list[EngineStatus] | None = None, *,
               stop_when: Callable[[EngineStatus], bool] = lambda _status: False,
               options: EngineOptions = OPTIONS) -> tuple[EngineResult, ParticipationEngine]:
    """Run the engine against ``coordinator`` to its end; ``stop_when(status)`` true stops it (as the GUI would)."""
    node = approved.node
    transport, _adapter = lying_transport(node.ca_path, coordinator, tokens=StaticTokens(),
                                          egress=node.service.egress)
    membership = node.service.membership.get()
    assert membership is not None
    connection = FederationConnection(membership, transport, CoordinatorClient(transport), StaticTokens(),
                                      NodeKey.generate())
    seen = statuses if statuses is not None else []
    engines: list[ParticipationEngine] = []

    def on_status(status: EngineStatus) -> None:
        seen.append(status)
        if stop_when(status):
            engines[0].stop()

    engine = ParticipationEngine(node.service, approved.plan.sha256, home=node.home, options=options,
                                 on_status=on_status, connection=connection)
    engines.append(engine)
    try:
        return engine.run(), engine
    finally:
        connection.close()


def test_an_honest_round_trains_once_and_records_its_epsilon(approved: ApprovedNode) -> None:
    coordinator = LyingRound(approved.plan.sha256, BASE)
    result, _ = run_engine(approved, coordinator)
    assert result.phase == EngineStage.FINISHED, result.message
    assert result.rounds_trained == 1 and len(coordinator.uploads) == 1
    assert len(approved.node.service.ledger.entries(approved.dataset_id)) == 1


# -- hostile answers ---------------------------------------------------------------------------------------------------

def blob(state: dict[str, np.ndarray]) -> bytes:
    return state_dict_to_bytes(state)


def all_as(dtype: type) -> bytes:
    return blob({name: value.astype(dtype) for name, value in tiny_weights().items()})


def renamed() -> bytes:
    state = tiny_weights()
    first = next(iter(state))
    return blob({("module." + name if name == first else name): value for name, value in state.items()})


def reshaped() -> bytes:
    state = tiny_weights()
    first = next(iter(state))
    return blob({**state, first: state[first].reshape(-1)})


def with_value(value: float) -> bytes:
    state = tiny_weights()
    last = list(state)[-1]
    poisoned = state[last].copy()
    poisoned.flat[0] = value
    return blob({**state, last: poisoned})


def lying_header() -> bytes:
    """Valid safetensors structure whose header claims more data than the file holds."""
    header = {"stem.0.weight": {"dtype": "F32", "shape": [8, 1, 3, 3], "data_offsets": [0, 10**9]}}
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + b"\0" * 64


# Model blobs the coordinator announces consistently (join's model sha256 and the download header both match the
# bytes), so they pass the sha256 check and reach the engine's own reading of the model: refused before training.
HOSTILE_MODELS: dict[str, Any] = {
    "truncated": lambda: BASE[: len(BASE) // 2],
    "pickled": lambda: pickle.dumps(tiny_weights()),
    "empty": lambda: b"",
    "header-lies-about-its-data": lying_header,
    "float64": lambda: all_as(np.float64),
    "float16": lambda: all_as(np.float16),
    "int8": lambda: all_as(np.int8),
    "bool": lambda: all_as(np.bool_),
    "complex": lambda: all_as(np.complex64),
    "wrong-tensor-name": renamed,
    "missing-tensor": lambda: blob(dict(list(tiny_weights().items())[1:])),
    "extra-tensor": lambda: blob({**tiny_weights(), "backdoor.weight": np.zeros(3, dtype=np.float32)}),
    "wrong-shape": reshaped,
    "nan-weight": lambda: with_value(float("nan")),
    "inf-weight": lambda: with_value(float("inf")),
    "another-architecture": lambda: blob({n: t.detach().numpy() for n, t in build_model("pneumonet-s")
                                          .state_dict().items()}),
}


def other_plan_round(coordinator: LyingRound, _request: Any) -> Answer:
    return json_answer(coordinator.round_json(plan_sha256="c" * 64))


def other_plan_wait(coordinator: LyingRound, _request: Any) -> Answer:
    lie = coordinator.round_json(plan_sha256="c" * 64)
    return json_answer({"changed": True, "plan_status": "active", "round": lie})


def weights_with_wrong_header(coordinator: LyingRound, _request: Any) -> Answer:
    return Answer(coordinator.weights, 200, {SHA256_HEADER: "0" * 64})


def weights_not_announced(coordinator: LyingRound, _request: Any) -> Answer:
    """Other bytes than the round announced, with a header that matches them (a swapped model)."""
    other = with_value(0.5)
    return Answer(other, 200, {SHA256_HEADER: LyingRound("0" * 64, other).model_sha256})


def receipt(**changes: Any) -> Any:
    def lie(coordinator: LyingRound, _request: Any) -> Answer:
        return json_answer(coordinator.receipt_json(**changes))
    return lie


def raw(body: bytes, status: int = 200) -> Any:
    def lie(_coordinator: LyingRound, _request: Any) -> Answer:
        return Answer(body, status, {"Content-Type": "application/json"})
    return lie


# Lies about the round or its model, answered before the engine trains: nothing may be written.
BEFORE_TRAINING: dict[str, dict[str, Any]] = {
    "wait-round-of-another-plan": {"wait": other_plan_wait},
    "join-round-of-another-plan": {"join": other_plan_round},
    "weights-header-sha256-mismatch": {"weights": weights_with_wrong_header},
    "weights-other-than-announced": {"weights": weights_not_announced},
    "join-not-json": {"join": raw(b"\xff{")},
    "wait-deeply-nested": {"wait": raw(b"[" * 100_000 + b"]" * 100_000)},
}

# Lies about the upload, answered after the engine trained and recorded ε (by design, before the update left).
AFTER_TRAINING: dict[str, dict[str, Any]] = {
    "receipt-for-another-round": {"update": receipt(round_id=8)},
    "receipt-for-another-update": {"update": receipt(update_sha256="0" * 64)},
    "receipt-with-other-example-count": {"update": receipt(examples=10**6)},
    "receipt-not-json": {"update": raw(b"<html>oops</html>")},
    "receipt-server-error": {"update": raw(b'{"error": "internal", "message": "boom"}', 500)},
}


def ended_plainly(result: EngineResult) -> None:
    assert result.phase in (EngineStage.REFUSED, EngineStage.FAILED), (result.phase, result.message)
    assert "unexpected error" not in result.message.lower(), result.message
    assert result.message.strip() and "Traceback" not in result.message


@pytest.mark.parametrize("name", sorted(HOSTILE_MODELS))
def test_a_hostile_model_is_refused_before_training(approved: ApprovedNode, name: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Before training: the store (ledger, approvals, model registry, ...) is unchanged and nothing is uploaded."""
    coordinator = LyingRound(approved.plan.sha256, HOSTILE_MODELS[name]())
    before = store_snapshot(approved.node.home)
    statuses: list[EngineStatus] = []
    with caplog.at_level(logging.ERROR, logger="pneumodesk.client.participation"):
        result, _ = run_engine(approved, coordinator, statuses)
    ended_plainly(result)
    assert not caplog.records, "a hostile model was handled as an unexpected error"
    assert EngineStage.TRAINING not in {s.phase for s in statuses}
    assert coordinator.uploads == [] and store_snapshot(approved.node.home) == before


@pytest.mark.parametrize("name", sorted(BEFORE_TRAINING))
def test_a_hostile_round_answer_is_refused_before_training(approved: ApprovedNode, name: str) -> None:
    """Before training: the store is unchanged and nothing is uploaded."""
    coordinator = LyingRound(approved.plan.sha256, BASE, lies=BEFORE_TRAINING[name])
    before = store_snapshot(approved.node.home)
    result, _ = run_engine(approved, coordinator)
    ended_plainly(result)
    assert coordinator.uploads == [] and store_snapshot(approved.node.home) == before


@pytest.mark.parametrize("name", sorted(AFTER_TRAINING))
def test_a_hostile_upload_answer_fails_after_epsilon_was_recorded(approved: ApprovedNode, name: str) -> None:
    """After training: the ledger entry recorded before the upload is allowed (and required); nothing else in the
    store changed, and the trained update is kept so the next start sends the same bytes again."""
    coordinator = LyingRound(approved.plan.sha256, BASE, lies=AFTER_TRAINING[name])
    before = store_snapshot(approved.node.home)
    result, engine = run_engine(approved, coordinator)
    ended_plainly(result)
    after = store_snapshot(approved.node.home)
    assert len(after["privacy_ledger"]) == len(before["privacy_ledger"]) + 1
    assert len(after["audit_entries"]) == len(before["audit_entries"]) + 1  # the ledger entry's own audit line
    recorded = ("privacy_ledger", "audit_entries", "audit_head", "sqlite_sequence")
    assert {table: rows for table, rows in after.items() if table not in recorded} == \
        {table: rows for table, rows in before.items() if table not in recorded}
    record = engine.store.load().rounds[LyingRound.ROUND_ID]
    assert record.stage == "trained" and engine.store.load_update(LyingRound.ROUND_ID) == coordinator.uploads[-1]


def without_recorded_epsilon(snapshot: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    recorded = ("privacy_ledger", "audit_entries", "audit_head", "sqlite_sequence")
    return {table: rows for table, rows in snapshot.items() if table not in recorded}


def test_a_coordinator_that_vanishes_before_the_download_costs_nothing(approved: ApprovedNode) -> None:
    """Before training: UNREACHABLE (with a retry delay) until stopped; the store is unchanged."""
    coordinator = LyingRound(approved.plan.sha256, BASE, lies={"weights": vanish})
    before = store_snapshot(approved.node.home)
    statuses: list[EngineStatus] = []
    result, _ = run_engine(approved, coordinator, statuses,
                           stop_when=lambda status: status.phase == EngineStage.UNREACHABLE)
    unreachable = [s for s in statuses if s.phase == EngineStage.UNREACHABLE]
    assert unreachable and unreachable[0].retry_in is not None and "unreachable" in unreachable[0].message.lower()
    assert result.phase == EngineStage.STOPPED and result.rounds_trained == 0
    assert coordinator.uploads == [] and store_snapshot(approved.node.home) == before


def test_a_coordinator_that_vanishes_at_the_upload_gets_the_same_update_on_the_next_start(
        approved: ApprovedNode) -> None:
    """After training: ε was recorded before the update left (one ledger entry, by design); the next start sends
    the very same bytes without training again or recording ε twice."""
    coordinator = LyingRound(approved.plan.sha256, BASE, lies={"update": vanish})
    before = store_snapshot(approved.node.home)
    result, engine = run_engine(approved, coordinator,
                                stop_when=lambda status: status.phase == EngineStage.UNREACHABLE)
    assert result.phase == EngineStage.STOPPED and result.rounds_trained == 1
    kept = engine.store.load_update(LyingRound.ROUND_ID)
    assert kept is not None and coordinator.uploads == [kept]  # the request left; no answer came back
    after = store_snapshot(approved.node.home)
    assert len(after["privacy_ledger"]) == len(before["privacy_ledger"]) + 1
    assert without_recorded_epsilon(after) == without_recorded_epsilon(before)

    back = LyingRound(approved.plan.sha256, BASE)
    resumed, _ = run_engine(approved, back)
    assert resumed.phase == EngineStage.FINISHED and resumed.rounds_trained == 0, resumed.message
    assert back.uploads == [kept] and "GET weights" not in back.seen
    assert store_snapshot(approved.node.home)["privacy_ledger"] == after["privacy_ledger"]


def test_a_long_poll_that_flips_the_round_back_to_open_does_not_train_it_again(approved: ApprovedNode) -> None:
    """After training (one ε entry, by design): the round reopened with an older revision is not trained again."""
    coordinator = LyingRound(approved.plan.sha256, BASE)

    def flipped_wait(lying: LyingRound, _request: Any) -> Answer:
        stale = lying.round_json(state="open", updates_received=0, result_version=None, revision="7:0")
        return json_answer({"changed": True, "plan_status": "active", "round": stale})

    def after_upload(lying: LyingRound) -> None:
        if lying.uploads:
            lying.lies["wait"] = flipped_wait

    coordinator.on_wait = after_upload
    statuses: list[EngineStatus] = []
    result, _ = run_engine(approved, coordinator, statuses,
                           stop_when=lambda _status: coordinator.waits >= 6)
    assert result.phase == EngineStage.STOPPED and result.rounds_trained == 1, result.message
    assert len(coordinator.uploads) == 1 and coordinator.seen.count("POST join") == 1
    assert len(approved.node.service.ledger.entries(approved.dataset_id)) == 1


def test_the_engine_trains_under_the_approved_text_whatever_the_coordinator_now_serves(
        approved: ApprovedNode) -> None:
    """After training, by design: the plan text comes from the node's approval only. A coordinator that now serves
    another text under the approved hash is never asked; the ε recorded is the approved plan's."""
    coordinator = LyingRound(approved.plan.sha256, BASE)
    changed = {**json.loads(approved.plan.canonical_json()), "learning_rate": 9.0, "dp": {"enabled": False}}
    coordinator.lies["other"] = lambda _lying, _request: json_answer(
        {"plan_sha256": approved.plan.sha256, "name": "x", "published": "2030-01-01T00:00:00+00:00",
         "status": "active", "plan": changed})
    result, _ = run_engine(approved, coordinator)
    assert result.phase == EngineStage.FINISHED, result.message
    assert not any("other" in request for request in coordinator.seen)
    from pneumodesk.training.privacy import plan_privacy_cost

    (entry,) = approved.node.service.ledger.entries(approved.dataset_id)  # the served text has DP off: not used
    cost = plan_privacy_cost(approved.plan, len(approved.node.service.datasets.files(approved.dataset_id, "training")))
    assert cost is not None and entry.noise_multiplier == cost.noise_multiplier


def test_an_approval_whose_text_changed_under_the_same_hash_is_refused_before_joining(
        approved: ApprovedNode) -> None:
    """Before training: the approved bytes no longer hash to the plan's hash (e.g. recorded from a lying
    coordinator's text): REFUSED (plan_changed); nothing joined, downloaded or written."""
    changed = {**json.loads(approved.plan.canonical_json()), "learning_rate": 0.01}
    connection = sqlite3.connect(approved.node.home / STORE_FILE)
    with connection:
        connection.execute("UPDATE approvals SET plan_json = ?", (json.dumps(changed),))
    connection.close()
    coordinator = LyingRound(approved.plan.sha256, BASE)
    before = store_snapshot(approved.node.home)
    result, _ = run_engine(approved, coordinator)
    assert result.phase == EngineStage.REFUSED and result.reason == RefusalReason.PLAN_CHANGED, result.message
    assert "POST join" not in coordinator.seen and store_snapshot(approved.node.home) == before


# -- Hypothesis: the real model's safetensors header, edited by a hostile coordinator ----------------------------------

def _header_and_data(data: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8: 8 + length]), data[8 + length:]


def _with_header(header: Any, data: bytes) -> bytes:
    text = json.dumps(header, allow_nan=True).encode()
    return struct.pack("<Q", len(text)) + text + data


ENGINE_FUZZ = settings(derandomize=True, max_examples=12, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                              HealthCheck.data_too_large])


@ENGINE_FUZZ
@given(st.data())
def test_fuzzed_model_headers_are_trained_on_only_when_they_are_the_plan_s_model(
        images: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    """Either the edited model is still exactly a pneumonet-tiny model (then the round trains and finishes), or the
    engine refuses it plainly before training (store unchanged, nothing uploaded)."""
    header, tensors = _header_and_data(BASE)
    edited = data.draw(mutations(header, rounds=2), label="header")
    model = _with_header(edited, tensors)
    with approved_node(tmp_path_factory.mktemp("fuzz") / "home", images) as node:
        coordinator = LyingRound(node.plan.sha256, model)
        before = store_snapshot(node.node.home)
        result, _ = run_engine(node, coordinator)
        if result.phase == EngineStage.FINISHED:
            return
        ended_plainly(result)
        assert coordinator.uploads == [] and store_snapshot(node.node.home) == before


# -- the engine's crash corpus: every hostile answer the engine once trained on or accepted ---------------------------

ENGINE_CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "coordinator_messages" / "engine"


def _engine_corpus() -> list[Path]:
    return sorted(ENGINE_CORPUS.glob("*.json"))


@pytest.mark.parametrize("entry", _engine_corpus(), ids=lambda path: path.stem)
def test_engine_corpus_is_refused_plainly(approved: ApprovedNode, entry: Path) -> None:
    """``engine_model``: the round's model (zlib, base64), refused before training with the store unchanged;
    ``engine_result_model``: the aggregated model offered as a candidate, refused after training (model registry
    unchanged; the ε entry is by design); ``engine_receipt``: the honest receipt with ``changes``, refused after
    training (the ε entry is by design)."""
    document = json.loads(entry.read_text(encoding="utf-8"))
    assert document["defect"]
    before = store_snapshot(approved.node.home)
    if document["kind"] == "engine_model":
        coordinator = LyingRound(approved.plan.sha256, zlib.decompress(base64.b64decode(document["body_zlib"])))
        result, _ = run_engine(approved, coordinator)
        ended_plainly(result)
        assert coordinator.uploads == [] and store_snapshot(approved.node.home) == before, document["defect"]
    elif document["kind"] == "engine_result_model":
        coordinator = LyingRound(approved.plan.sha256, BASE,
                                 result=zlib.decompress(base64.b64decode(document["body_zlib"])))
        options = EngineOptions(poll_timeout=1, max_rounds=1, candidates="final", retry_delays=(0.01,), seed=1)
        result, _ = run_engine(approved, coordinator, options=options)
        ended_plainly(result)
        assert without_recorded_epsilon(store_snapshot(approved.node.home)) == without_recorded_epsilon(before)
    else:
        assert document["kind"] == "engine_receipt"
        coordinator = LyingRound(approved.plan.sha256, BASE, lies={"update": receipt(**document["changes"])})
        result, engine = run_engine(approved, coordinator)
        ended_plainly(result)
        assert engine.store.load().rounds[LyingRound.ROUND_ID].stage == "trained", document["defect"]
        assert without_recorded_epsilon(store_snapshot(approved.node.home)) == without_recorded_epsilon(before)


def test_the_engine_corpus_is_not_empty() -> None:
    assert len(_engine_corpus()) >= 10


@pytest.mark.parametrize("name", ["nan-weight", "float64", "wrong-shape", "truncated"])
def test_a_hostile_aggregated_model_never_enters_the_model_registry(approved: ApprovedNode, name: str) -> None:
    """After training (the round's ε entry is by design): the aggregated model offered as a local candidate is
    refused plainly, and the model registry (``local_models``) is unchanged."""
    coordinator = LyingRound(approved.plan.sha256, BASE, result=HOSTILE_MODELS[name]())
    before = store_snapshot(approved.node.home)
    options = EngineOptions(poll_timeout=1, max_rounds=1, candidates="final", retry_delays=(0.01,), seed=1)
    result, _ = run_engine(approved, coordinator, options=options)
    ended_plainly(result)
    assert "Global model version 2" in result.message and result.candidates == ()
    after = store_snapshot(approved.node.home)
    assert after["local_models"] == before["local_models"]
    assert without_recorded_epsilon(after) == without_recorded_epsilon(before)
