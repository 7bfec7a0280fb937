"""Under CI a missing Orthanc fails the run (tests/conftest.py's hook); elsewhere it is a skip with its reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = """
from tests.pacs.orthanc import start_orthanc

def test_needs_orthanc(tmp_path):
    start_orthanc(tmp_path)
"""


@pytest.mark.parametrize(("ci", "expected"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_missing_orthanc_fails_only_under_ci(tmp_path, ci, expected):
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    environment = {**os.environ, "CI": ci, "PYTHONPATH": str(REPO), "PATH": str(tmp_path)}  # no Orthanc on PATH
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-rs", str(tmp_path)],
                         cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120)
    assert expected in run.stdout, run.stdout + run.stderr
    assert "Orthanc binary is not installed" in run.stdout
