"""The coordinator's API under generated hostile input, from its own OpenAPI description (see ``api_fuzz``).

Bounded for the suite: every operation, in each auth mode (no token, node, viewer, operator), with data that fits the
description and data that does not, a few derandomised cases each (the same cases every run). Every request that
ever broke a property is kept in tests/corpus/api/ and replayed here. ``benchmarks/fuzz_api.py`` runs many more.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .api_fuzz import ACCESS, AUTH_MODES, FuzzTarget, error_body_problem, fuzz_all, replay

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "api"
EXAMPLES_PER_OPERATION = 5  # per operation, auth mode and kind of data (fitting / not fitting)


@pytest.fixture(scope="module")
def target(tmp_path_factory, tiny_bundle_dir):
    fuzz_target = FuzzTarget.create(tmp_path_factory.mktemp("fuzz") / "coordinator", tiny_bundle_dir)
    yield fuzz_target
    fuzz_target.close()


def test_every_operation_has_a_stated_role(target):
    """A new route fails here until ``ACCESS`` says who may call it: the fuzzer checks the routes against it."""
    assert {f"{op.method.upper()} {op.path}" for op in target.operations()} == set(ACCESS)


@pytest.mark.parametrize("mode", list(AUTH_MODES))
def test_generated_requests_break_no_property(target, mode):
    stats = fuzz_all(target, [mode], max_examples=EXAMPLES_PER_OPERATION)
    report = "\n".join(finding.describe() for finding in stats.findings[:10])
    assert not stats.findings, f"{len(stats.findings)} of {stats.cases[mode]} requests broke a property:\n{report}"
    assert stats.operations == set(ACCESS)
    assert stats.cases[mode] >= 2 * len(ACCESS)  # each operation was really tried, not just generated for
    if mode != "operator":  # the role property is not vacuous: some generated requests lacked the role
        assert stats.statuses[401] + stats.statuses[403] > 0


@pytest.mark.parametrize("entry", sorted(CORPUS.glob("*.json")), ids=lambda path: path.stem)
def test_corpus_request_is_answered_as_promised(target, entry):
    problems = replay(target, json.loads(entry.read_text(encoding="utf-8")))
    assert not problems, problems


class _Answer:
    """Just enough of a response for ``error_body_problem``."""

    def __init__(self, body: bytes, content_type: str = "application/json") -> None:
        self.content = body
        self.headers = {"content-type": [content_type]}


@pytest.mark.parametrize(("body", "content_type"), [
    (b'{"detail": "Not Found"}', "application/json"),  # FastAPI's own shape
    (b'{"error": "oops", "message": "Something."}', "application/json"),  # not an ErrorCode
    (b'{"error": "not_found", "message": "No.", "trace": "..."}', "application/json"),  # extra key
    (b"Internal Server Error", "text/plain"),
])
def test_the_error_schema_check_catches_what_it_should(body, content_type):
    assert error_body_problem(_Answer(body, content_type)) is not None


def test_the_error_schema_check_passes_the_one_error_schema():
    body = b'{"error": "invalid_input", "message": "No.", "details": [{"location": "x", "problem": "y"}]}'
    assert error_body_problem(_Answer(body)) is None
