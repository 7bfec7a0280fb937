"""Command-line start-up on this machine: wall time of ``pneumodesk --version`` and ``pneumodesk --help`` in fresh
processes. Prints JSON (medians of repeated runs; ratios against a bare ``python -c pass`` and ``python -c "import
torch"`` measured in the same run), and which heavy libraries ``--version`` loaded (there should be none).

    .venv/bin/python benchmarks/cli_start.py [--repeats 7] [--module]

By default it runs the installed entry point next to this interpreter (``.venv/bin/pneumodesk``), else
``python -m pneumodesk``; ``--module`` forces the latter. Either imports pneumodesk as this interpreter would
(``PYTHONPATH`` first), so ``PYTHONPATH=$PWD`` measures the checkout in the current folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUDGET_VERSION_S = 1.0
HEAVY = ("torch", "numpy", "sqlalchemy", "alembic", "argon2", "PySide6", "fastapi")


def median_s(command: list[str], repeats: int) -> float:
    """Median wall time of ``command`` in a fresh process (after one unmeasured warm-up run)."""
    times = []
    for run in range(repeats + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if run:
            times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def pneumodesk_command(force_module: bool) -> list[str]:
    installed = Path(sys.executable).parent / ("pneumodesk.exe" if os.name == "nt" else "pneumodesk")
    if installed.is_file() and not force_module:
        return [str(installed)]
    return [sys.executable, "-m", "pneumodesk"]


def heavy_libraries_loaded(arguments: list[str]) -> list[str]:
    """Top-level heavy packages that ``python -X importtime -m pneumodesk ARGUMENTS`` imported."""
    log = subprocess.run([sys.executable, "-X", "importtime", "-m", "pneumodesk", *arguments], check=True,
                         capture_output=True, text=True).stderr
    names = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in log.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return sorted(names.intersection(HEAVY))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="measured runs per command (default 7)")
    parser.add_argument("--module", action="store_true", help="run `python -m pneumodesk`, not the entry point")
    args = parser.parse_args()

    pneumodesk = pneumodesk_command(args.module)
    bare = median_s([sys.executable, "-c", "pass"], args.repeats)
    torch_import = median_s([sys.executable, "-c", "import torch"], args.repeats)
    version = median_s([*pneumodesk, "--version"], args.repeats)
    help_text = median_s([*pneumodesk, "--help"], args.repeats)
    report = {
        "machine": {"python": sys.version.split()[0], "cpus": os.cpu_count(), "load_average": _load_average(),
                    # without cached bytecode every run compiles pneumodesk's modules first (an installed app has it)
                    "bytecode_cache_written": not sys.dont_write_bytecode},
        "command": " ".join(pneumodesk),
        "repeats": args.repeats,
        "python_bare_s_median": bare,
        "python_import_torch_s_median": torch_import,
        "version_s_median": version,
        "help_s_median": help_text,
        "ratio_version_to_bare_python": round(version / bare, 2),
        "ratio_version_to_import_torch": round(version / torch_import, 2),
        "ratio_help_to_bare_python": round(help_text / bare, 2),
        "heavy_libraries_loaded_by_version": heavy_libraries_loaded(["--version"]),
        "budgets": {"version_s": BUDGET_VERSION_S},
    }
    report["within_budget"] = {"version": version <= BUDGET_VERSION_S}
    print(json.dumps(report, indent=2))
    return 0


def _load_average() -> list[float] | None:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):  # not on Windows
        return None


if __name__ == "__main__":
    raise SystemExit(main())
