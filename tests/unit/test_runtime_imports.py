"""What import-linter cannot see: which heavy libraries a command actually loads at run time (pyproject holds the
import contracts).

Every ``pneumodesk`` start builds the whole parser, so ``--version``, ``--help`` and each subcommand's ``--help``
must load none of the heavy libraries: those load inside a command's run function.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pneumodesk

HEAVY = ("torch", "numpy", "sqlalchemy", "alembic", "argon2", "PySide6", "fastapi")
REPO_ROOT = Path(pneumodesk.__file__).resolve().parents[1]


def _python(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run this interpreter on this checkout of pneumodesk (not whichever one the venv has installed)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env, cwd=REPO_ROOT)


def _imported_top_level_packages(importtime_log: str) -> set[str]:
    """Top-level names from ``-X importtime`` lines: ``import time: self | cumulative | <indent>name``."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in importtime_log.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


@pytest.mark.parametrize("arguments", [["--version"], ["--help"], ["train", "--help"], ["node", "run", "--help"]])
def test_starting_pneumodesk_loads_no_heavy_library(arguments: list[str]) -> None:
    finished = _python("-X", "importtime", "-m", "pneumodesk", *arguments)

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip()
    loaded = _imported_top_level_packages(finished.stderr)
    assert "pneumodesk" in loaded  # the log was read correctly
    assert sorted(loaded.intersection(HEAVY)) == []


_EVERY_HELP = """
import argparse, contextlib, io, json, sys
from pneumodesk import cli

def paths(parser, prefix):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [*prefix, name]
                yield from paths(sub, [*prefix, name])

shown = []
for path in paths(cli._parser(), []):
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            cli.main([*path, "--help"])
        except SystemExit as done:
            assert done.code == 0, path
    assert "usage: pneumodesk " + " ".join(path) in text.getvalue(), path
    shown.append(" ".join(path))
heavy = sys.argv[1].split(",")
print(json.dumps({"shown": shown, "heavy": sorted(m for m in sys.modules if m.split(".")[0] in heavy)}))
"""


def test_every_subcommand_help_loads_no_heavy_library() -> None:
    finished = _python("-c", _EVERY_HELP, ",".join(HEAVY))

    assert finished.returncode == 0, finished.stderr[-2000:]
    report = json.loads(finished.stdout)
    assert {"gui", "predict", "train", "evaluate", "calibrate", "accounts create", "node run", "plans approve",
            "models accept", "demo federation", "audit verify"} <= set(report["shown"])
    assert report["heavy"] == []


def test_training_loads_no_database_library() -> None:
    code = ("import sys, pneumodesk.training as t, pneumodesk.imaging.patient_groups as p; "
            "assert t.patient_group is p.patient_group; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'sqlalchemy', 'alembic', 'argon2'}))")
    finished = _python("-c", code)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip() == "[]"


_PREDICT_WITH_HEATMAPS = """
import sys
from pneumodesk import cli
code = cli.main(["predict", sys.argv[1], "--heatmap-dir", sys.argv[2], "--json"])
assert code == 0, code
unwanted = {"torchvision", "cv2", "matplotlib", "pytorch_grad_cam", "fastapi", "uvicorn", "starlette"}
print("loaded:" + ",".join(sorted({m.split(".")[0] for m in sys.modules} & unwanted)))
"""


def test_predicting_with_heat_maps_loads_no_vision_or_server_library(tmp_path: Path) -> None:
    """The workstation bundle ships without torchvision, OpenCV, matplotlib and the coordinator's server stack."""
    sample = next(path for path in sorted((REPO_ROOT / "resources" / "samples").iterdir()) if path.suffix == ".jpeg")

    finished = _python("-c", _PREDICT_WITH_HEATMAPS, str(sample), str(tmp_path))

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.strip().splitlines()[-1] == "loaded:"
    assert list(tmp_path.glob("*_heatmap.png"))
