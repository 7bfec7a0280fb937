"""Node ← coordinator, fuzzed: every answer a node reads from its coordinator (plans, long-poll answers, rounds,
model lists and blobs, challenge and token answers, enrolment, the secure-aggregation roster, share delivery and
unmasking request, receipts) is either accepted or refused with a typed, plain-sentence ``PneumoDeskError``; a
refused answer writes nothing to the node store, the privacy ledger or the pinned peer keys.

Bounded and derandomised (fixed seed) here; ``benchmarks/fuzz_node_messages.py`` runs the same drives longer.
Every input that once failed is kept in ``tests/corpus/coordinator_messages`` and replayed below.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pneumodesk.federation.tensors import sha256_hex
from tests.hostile_messages import (
    BASE_WEIGHTS,
    CHALLENGE,
    NODE_INFO,
    SECURE_ENDPOINTS,
    TOKEN,
    bodies,
    drive_enrolment,
    drive_model_list,
    drive_plan_list,
    drive_plan_wait,
    drive_round_info,
    drive_secure,
    drive_token_pair,
    drive_tokens,
    drive_upload_receipt,
    drive_weights,
    plan_list_template,
    receipt_template,
    replay,
    round_template,
    secure_template,
    weight_blobs,
)

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "coordinator_messages"
FUZZ = settings(derandomize=True, max_examples=20, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


def test_valid_answers_are_accepted() -> None:
    """The templates the fuzzers start from are what an honest coordinator sends: the node takes them."""
    from tests.hostile_messages import encode

    assert drive_plan_list(encode(plan_list_template())).accepted
    assert drive_plan_wait(encode({"changed": True, "plan_status": "active", "round": round_template()})).accepted
    assert drive_round_info(encode(round_template())).accepted
    assert drive_token_pair(encode(CHALLENGE), encode(TOKEN)).accepted
    assert drive_enrolment(encode(NODE_INFO), encode(CHALLENGE)).accepted
    digest = sha256_hex(BASE_WEIGHTS)
    assert drive_weights(BASE_WEIGHTS, digest, digest).accepted
    assert drive_secure("roster", encode(secure_template("roster"))).accepted
    assert drive_upload_receipt(encode(receipt_template())).accepted


@FUZZ
@given(bodies(plan_list_template()))
def test_plan_list(body: bytes) -> None:
    drive_plan_list(body)


@FUZZ
@given(bodies({"changed": True, "plan_status": "active", "round": round_template()}))
def test_plan_wait(body: bytes) -> None:
    drive_plan_wait(body)


@FUZZ
@given(bodies(round_template()))
def test_round_info(body: bytes) -> None:
    drive_round_info(body)


@FUZZ
@given(bodies([{"version": 1, "sha256": "b" * 64, "architecture": "pneumonet-tiny", "created": "2030-01-01",
                "parent_version": None, "plan_sha256": None, "round_number": None, "contributors": None,
                "size_bytes": 10}]))
def test_model_list(body: bytes) -> None:
    drive_model_list(body)


@FUZZ
@given(bodies({**CHALLENGE, **TOKEN}))
def test_token_answer_in_the_membership_check(body: bytes) -> None:
    drive_tokens(body)


@FUZZ
@given(bodies(CHALLENGE), bodies(TOKEN))
def test_challenge_then_token(challenge: bytes, token: bytes) -> None:
    drive_token_pair(challenge, token)


@settings(FUZZ, max_examples=10)
@given(bodies(NODE_INFO), bodies(CHALLENGE))
def test_enrolment(node_info: bytes, challenge: bytes) -> None:
    drive_enrolment(node_info, challenge)


@FUZZ
@given(weight_blobs(), st.sampled_from(["right", "wrong", "missing", "upper"]), st.booleans())
def test_model_blob(blob: bytes, header: str, announce: bool) -> None:
    digest = sha256_hex(blob)
    claimed = {"right": digest, "wrong": "0" * 64, "missing": None, "upper": digest.upper()}[header]
    outcome = drive_weights(blob, claimed, digest if announce else None)
    if header in ("wrong", "missing"):
        assert not outcome.accepted  # a blob whose sha256 does not match is never used


@FUZZ
@given(bodies(receipt_template()))
def test_upload_receipt(body: bytes) -> None:
    drive_upload_receipt(body)


@pytest.mark.parametrize("endpoint", SECURE_ENDPOINTS)
def test_secure_round_answers(endpoint: str) -> None:
    @settings(FUZZ, max_examples=10)
    @given(bodies(secure_template(endpoint)))
    def fuzz(body: bytes) -> None:
        drive_secure(endpoint, body)

    fuzz()


def _corpus() -> list[Path]:
    return sorted(CORPUS.glob("*.json"))


@pytest.mark.parametrize("entry", _corpus(), ids=lambda path: path.stem)
def test_crash_corpus_is_refused_plainly(entry: Path) -> None:
    """Each input that once crashed the node (or was wrongly accepted) is now refused with a typed error, or read
    safely where its entry says ``"expect": "accepted"``; a crash or a write on refusal fails inside ``replay``."""
    document = json.loads(entry.read_text(encoding="utf-8"))
    outcome = replay(document["kind"], document)
    assert outcome.accepted == (document.get("expect", "refused") == "accepted"), f"{entry.name}: {document['defect']}"


def test_the_corpus_is_not_empty_and_every_entry_names_its_defect() -> None:
    entries = _corpus()
    assert entries
    for entry in entries:
        document = json.loads(entry.read_text(encoding="utf-8"))
        assert document["defect"] and document["kind"]
        base64.b64decode(document.get("body", ""))
