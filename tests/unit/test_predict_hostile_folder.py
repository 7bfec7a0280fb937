"""A new user's first try: `pneumodesk predict` over pydicom's own test-file folder (CT, MR, RT, SR, DICOMDIRs,
damaged files), through the real CLI in a subprocess. One CSV row per file, a plain error in each refused row, exit
0, and no library warning on the terminal (they go to the app home's log)."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

from pneumodesk.imaging import is_supported_file
from tests.image_fuzz import PLAIN_MESSAGE, pydicom_test_files

ROOT = Path(__file__).resolve().parents[2]


def test_predict_over_pydicoms_test_files_reports_every_file(tmp_path, tiny_bundle_dir):
    folder = shutil.copytree(pydicom_test_files(), tmp_path / "pydicom test files")
    files = [path for path in folder.rglob("*") if path.is_file()]
    readable_kinds = [path for path in files if is_supported_file(path)]
    assert len(readable_kinds) > 150 and (folder / "badVR.dcm") in readable_kinds
    home, out = tmp_path / "home", tmp_path / "out.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "default"}
    finished = subprocess.run(
        [sys.executable, "-m", "pneumodesk", "--home", str(home), "predict", str(folder), "--csv", str(out),
         "--model", str(tiny_bundle_dir)],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "warn" not in finished.stderr.lower() and finished.stderr.strip() == ""
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(Path(row["path"]) for row in rows) == sorted(readable_kinds)
    refused = [row for row in rows if row["error"]]
    assert refused and all(PLAIN_MESSAGE.fullmatch(row["error"]) for row in refused)
    assert all(row["probability"] == "" for row in refused)
    by_name = {Path(row["path"]).name: row["error"] for row in rows}
    assert "not a chest radiograph (modality MR)" in by_name["MR_small.dcm"]
    assert "not a chest radiograph (modality RTDOSE)" in by_name["badVR.dcm"]
    assert "Traceback" not in finished.stdout
    assert "UserWarning" in (home / "logs" / "pneumodesk.log").read_text(encoding="utf-8")
