"""Start-up of the installed app against the development install, on this machine: ``pneumodesk --version`` and a
cold start to a usable window (``gui --screenshots``: the app opens offscreen, loads the model, renders every page
and exits), each in fresh processes, installed and development runs interleaved so both see the same machine load.
Prints JSON: medians and the installed/development ratio.

    .venv/bin/python benchmarks/installed_start.py --install-root ROOT [--repeats 5] [--screenshot-repeats 3]

ROOT is a folder holding opt/pneumodesk (``dpkg-deb -x pneumodesk_X_amd64.deb ROOT``) or ``/`` after installing
the package. The development side runs ``python -m pneumodesk`` with this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install-root", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--screenshot-repeats", type=int, default=3)
    args = parser.parse_args()
    installed = [str(args.install_root / "opt" / "pneumodesk" / "pneumodesk")]
    development = [sys.executable, "-m", "pneumodesk"]
    with tempfile.TemporaryDirectory(prefix="pneumodesk-start-") as scratch:
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(CHECKOUT),
               "PNEUMODESK_MACHINE_HOME": str(Path(scratch) / "node"), "HOME": scratch}
        times: dict[str, list[float]] = {key: [] for key in ("version_installed", "version_development",
                                                              "window_installed", "window_development")}
        timed([*installed, "--version"], env)  # warm the page cache for both: the cold start measured is the
        timed([*development, "--version"], env)  # app's own, not the disk's
        for _ in range(args.repeats):
            times["version_installed"].append(timed([*installed, "--version"], env))
            times["version_development"].append(timed([*development, "--version"], env))
        for run in range(args.screenshot_repeats):
            shots = Path(scratch) / f"shots-{run}"
            times["window_installed"].append(timed([*installed, "gui", "--screenshots", str(shots / "i")], env))
            times["window_development"].append(timed([*development, "gui", "--screenshots", str(shots / "d")], env))
    medians = {f"{key}_s": round(statistics.median(values), 3) for key, values in times.items() if values}
    result: dict[str, object] = {
        **medians,
        "version_ratio": round(medians["version_installed_s"] / medians["version_development_s"], 2),
        "runs": {key: [round(value, 3) for value in values] for key, values in times.items()},
        "load_average": os.getloadavg(),
    }
    if "window_installed_s" in medians:
        result["window_ratio"] = round(medians["window_installed_s"] / medians["window_development_s"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
