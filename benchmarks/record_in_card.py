"""Write a yardstick report (the JSON ``benchmarks/shift_suite.py --out`` wrote) into a bundle's model card, under
``extra.generalisation.NAME``: the shift suite of the bundle itself, or the cross-validation of its recipe (or of an
earlier recipe, for comparison). Only the card changes; the weights' and statistics' sha256s stay.

    .venv/bin/python benchmarks/record_in_card.py --bundle resources/models/default --as "shift suite" \
        --command "benchmarks/shift_suite.py ..." REPORT.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pneumodesk.training.card_evidence import record_evaluation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--as", dest="name", required=True, help="the entry's name in the card")
    parser.add_argument("--command", default="", help="the command that measured it (recorded with it)")
    parser.add_argument("--note", default="", help="one sentence on how it was measured (scale, load)")
    args = parser.parse_args()
    entry = record_evaluation(args.bundle, args.name, json.loads(args.report.read_text(encoding="utf-8")),
                              command=args.command, note=args.note)
    print(json.dumps({"bundle": str(args.bundle), "entry": args.name, "kind": entry["kind"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
