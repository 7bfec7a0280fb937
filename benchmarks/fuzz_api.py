"""A longer property-based run against the coordinator's API than the test suite's (tests/e2e/api_fuzz.py).

Every operation of the served OpenAPI description, in each auth mode (no token, an approved node, a viewer, an
operator), with data that fits the description and data that does not, ``--examples`` derandomised cases each (change
``--seed`` for other cases): no 5xx, the one JSON error schema, the documented status codes, content types and
bodies, no access without the operation's role, no stored change from a refused request. A real coordinator on its
SQLite database, driven in-process over ASGI. Prints JSON: operations covered, cases per auth mode, statuses,
failures (each with the request that reproduces it; add it to tests/corpus/api/ once fixed).

    .venv/bin/python benchmarks/fuzz_api.py [--examples 50] [--seed 0] [--modes none node viewer operator]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50, help="cases per operation, auth mode and kind of data")
    parser.add_argument("--seed", type=int, default=0, help="0: the suite's derandomised cases; else other ones")
    parser.add_argument("--modes", nargs="+", default=["none", "node", "viewer", "operator"])
    parser.add_argument("--no-state-check", action="store_true", help="skip the before/after database comparison")
    args = parser.parse_args()

    from tests.builders import make_tiny_bundle
    from tests.e2e.api_fuzz import AUTH_MODES, FuzzStats, FuzzTarget, fuzz_all

    unknown = set(args.modes) - set(AUTH_MODES)
    if unknown:
        parser.error(f"unknown auth modes {sorted(unknown)}; known: {sorted(AUTH_MODES)}")
    with tempfile.TemporaryDirectory() as folder:
        bundle = Path(folder) / "bundle"
        make_tiny_bundle().save(bundle)
        started = time.perf_counter()
        target = FuzzTarget.create(Path(folder) / "coordinator", bundle)
        try:
            stats = FuzzStats()
            per_mode_seconds = {}
            for mode in args.modes:
                mode_started = time.perf_counter()
                fuzz_all(target, [mode], max_examples=args.examples, stats=stats, check_state=not args.no_state_check,
                         seed=args.seed)
                per_mode_seconds[mode] = round(time.perf_counter() - mode_started, 1)
                print(json.dumps({"mode": mode, "cases": stats.cases[mode], "seconds": per_mode_seconds[mode],
                                  "failures_so_far": len(stats.findings)}), file=sys.stderr)
        finally:
            target.close()
    problems = Counter(f"{finding.operation}: {finding.problem}" for finding in stats.findings)
    report = {
        "examples_per_operation": args.examples,
        "seed": args.seed,
        "operations_covered": len(stats.operations),
        "operations": sorted(stats.operations),
        "cases_per_auth_mode": dict(stats.cases),
        "cases_total": sum(stats.cases.values()),
        "statuses": {str(code): count for code, count in sorted(stats.statuses.items())},
        "nothing_to_negate": sorted(f"{op} ({kind})" for op, kind in stats.unsatisfiable),
        "failures": len(stats.findings),
        "failure_kinds": dict(problems.most_common()),
        "failing_requests": [{"operation": f.operation, "auth": f.mode, "problem": f.problem, "status": f.status,
                              "request": f.request, "answer": f.body[:500]} for f in stats.findings[:50]],
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_mode": per_mode_seconds,
    }
    print(json.dumps(report, indent=2))
    return 1 if stats.findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
