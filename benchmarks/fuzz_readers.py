"""Long fuzzing run of the X-ray readers (PNG, JPEG, TIFF, BMP, DICOM): mutated pydicom test files and made images,
each checked against the property in tests/image_fuzz.py. Prints JSON: inputs tried, outcomes, failures (each
saved, with the seed and mutation steps, under --save for minimising into tests/corpus/images/), time. Not a test.

    PYTHONPATH=. .venv/bin/python benchmarks/fuzz_readers.py [--examples 5000] [--seed 0] [--save DIR]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings

from tests.image_fuzz import (
    FuzzInput,
    ReaderDefect,
    check_bytes,
    chest_dicom_seed,
    mutated_inputs,
    pydicom_seeds,
    raster_seeds,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seed-bytes", type=int, default=400_000)
    parser.add_argument("--memory-gib", type=float, default=6.0, help="address-space cap: a bomb fails loudly")
    parser.add_argument("--save", type=Path, help="folder to write each failing input into")
    args = parser.parse_args()
    cap = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    seeds = pydicom_seeds(args.max_seed_bytes) + raster_seeds() + [chest_dicom_seed()]
    outcomes: collections.Counter[str] = collections.Counter()
    messages: collections.Counter[str] = collections.Counter()
    failures: dict[str, dict[str, object]] = {}
    slowest = 0.0
    folder = Path(tempfile.mkdtemp(prefix="fuzz-readers-"))

    @settings(max_examples=args.examples, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(mutated_inputs(seeds))
    def run(fuzz_input: FuzzInput) -> None:
        nonlocal slowest
        try:
            outcome = check_bytes(fuzz_input, folder)
        except (ReaderDefect, MemoryError) as defect:
            cause = defect.__cause__ or defect
            frames = traceback.extract_tb(cause.__traceback__)[-3:]
            where = [f"{Path(frame.filename).name}:{frame.lineno} {frame.name}" for frame in frames]
            key = f"{type(cause).__name__} at {where[-1] if where else '?'}"
            outcomes["DEFECT"] += 1
            if key not in failures:
                digest = hashlib.sha256(fuzz_input.data).hexdigest()[:16]
                failures[key] = {"defect": str(defect)[:300], "where": where, "seed": fuzz_input.seed,
                                 "steps": fuzz_input.steps, "bytes": len(fuzz_input.data), "sha256_16": digest,
                                 "count": 0}
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    (args.save / f"{digest}{fuzz_input.suffix or '.bin'}").write_bytes(fuzz_input.data)
            failures[key]["count"] = int(str(failures[key]["count"])) + 1
            return
        outcomes[outcome.kind] += 1
        messages[outcome.message.split("(")[0][:60]] += 1
        slowest = max(slowest, outcome.seconds)

    from hypothesis import seed as hypothesis_seed

    started = time.perf_counter()
    hypothesis_seed(args.seed)(run)()
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "inputs_tried": sum(outcomes.values()), "seeds": len(seeds), "outcomes": dict(outcomes),
        "commonest_messages": dict(messages.most_common(8)), "distinct_failures": len(failures),
        "failures": list(failures.values()),
        "seconds": round(elapsed, 1), "inputs_per_second": round(sum(outcomes.values()) / elapsed, 1),
        "slowest_input_seconds": round(slowest, 3), "peak_rss_mib": round(peak_mib),
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
