"""Node ← coordinator fuzzing, longer than the test suite's bounded run: every message kind a node reads from its
coordinator, with many more generated answers (same drives as ``tests/unit/test_client_hostile_messages.py``).

Prints JSON: per message kind, the inputs tried, how many the node accepted and refused, and the failures found (a
failure is an exception other than a typed ``PneumoDeskError``, or a refused answer that changed the node store or
pinned keys), each with its falsifying input in base64 — add those to tests/corpus/coordinator_messages.

    PYTHONPATH=. .venv/bin/python benchmarks/fuzz_node_messages.py [--examples 500] [--kinds weights] [--seed 1]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.hostile_messages import (
    CHALLENGE,
    KINDS,
    NODE_INFO,
    TOKEN,
    Crash,
    Outcome,
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
    round_template,
    secure_template,
    weight_blobs,
)

MODEL_LIST = [{"version": 1, "sha256": "b" * 64, "architecture": "pneumonet-tiny", "created": "2030-01-01",
               "parent_version": None, "plan_sha256": None, "round_number": None, "contributors": None,
               "size_bytes": 10}]


def _one(body: st.SearchStrategy[bytes], drive: Callable[[bytes], Outcome]) -> tuple[st.SearchStrategy[Any],
                                                                                    Callable[[Any], Outcome]]:
    return body, drive


def _weights(args: tuple[bytes, bool, bool]) -> Outcome:
    from pneumodesk.federation.tensors import sha256_hex

    blob, right, announce = args
    digest = sha256_hex(blob)
    return drive_weights(blob, digest if right else "0" * 64, digest if announce else None)


def kinds() -> dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Outcome]]]:
    table: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], Outcome]]] = {
        "plan_list": _one(bodies(plan_list_template()), drive_plan_list),
        "plan_wait": _one(bodies({"changed": True, "plan_status": "active", "round": round_template()}),
                          drive_plan_wait),
        "round_info": _one(bodies(round_template()), drive_round_info),
        "model_list": _one(bodies(MODEL_LIST), drive_model_list),
        "token_answer": _one(bodies({**CHALLENGE, **TOKEN}), drive_tokens),
        "challenge_token": (st.tuples(bodies(CHALLENGE), bodies(TOKEN)), lambda pair: drive_token_pair(*pair)),
        "enrolment": (st.tuples(bodies(NODE_INFO), bodies(CHALLENGE)), lambda pair: drive_enrolment(*pair)),
        "weights": (st.tuples(weight_blobs(), st.booleans(), st.booleans()), _weights),
        "upload_receipt": _one(bodies(receipt_template()), drive_upload_receipt),
    }
    for endpoint in ("roster", "delivery", "unmask-request", "receipt"):
        table[f"secure_{endpoint}"] = (bodies(secure_template(endpoint)),
                                       lambda body, endpoint=endpoint: drive_secure(endpoint, body))
    assert set(table) == set(KINDS)
    return table


def _encoded(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, tuple):
        return [_encoded(item) for item in value]
    return value


def fuzz_kind(strategy: st.SearchStrategy[Any], drive: Callable[[Any], Outcome], examples: int,
              run_seed: int) -> dict[str, Any]:
    counts = {"tried": 0, "accepted": 0, "refused": 0}
    failures: list[dict[str, Any]] = []
    started = time.perf_counter()

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def run(value: Any) -> None:
        counts["tried"] += 1
        try:
            outcome = drive(value)
        except Crash as error:
            failures.append({"failure": str(error), "input": _encoded(value)})
            return  # keep going: count every failing input, not only the first
        counts["accepted" if outcome.accepted else "refused"] += 1

    run()
    return {**counts, "failures": failures, "seconds": round(time.perf_counter() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="generated answers per message kind")
    parser.add_argument("--kinds", nargs="*", default=list(KINDS), choices=KINDS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    table = kinds()
    report = {}
    for kind in args.kinds:
        strategy, drive = table[kind]
        report[kind] = fuzz_kind(strategy, drive, args.examples, args.seed)
        print(json.dumps({kind: {k: v for k, v in report[kind].items() if k != "failures"}}), file=sys.stderr)
    total = {"tried": sum(r["tried"] for r in report.values()),
             "failures": sum(len(r["failures"]) for r in report.values())}
    print(json.dumps({"kinds": report, "total": total}, indent=2))
    return 1 if total["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
