"""``pneumodesk demo federation --drop-after-masking K``: secure aggregation on, K hospitals vanish right after
sending their masked input, and the round still completes with every masked input in the sum."""

from __future__ import annotations

import json
import subprocess
import sys

from .test_demo_federation import small_demo_npz


def test_the_demo_round_completes_when_hospitals_vanish_after_masking(tmp_path):
    data = small_demo_npz(tmp_path / "small.npz")

    result = subprocess.run(
        [sys.executable, "-m", "pneumodesk", "demo", "federation", "--hospitals", "5", "--rounds", "1",
         "--drop-after-masking", "2", "--dp-epsilon", "0", "--data", str(data), "--batch-size", "16",
         "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["secure_aggregation"] is True and figures["dropped"] == 2
    assert figures["rounds_completed"] == 1 and figures["final_model_version"] == 2
    assert figures["contributors_last_round"] == 5  # they vanished after masking: their inputs are in the sum
    assert 0.0 <= figures["final_validation_auc"] <= 1.0


def test_the_demo_refuses_to_drop_more_than_the_threshold_allows(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pneumodesk", "demo", "federation", "--hospitals", "5", "--rounds", "1",
         "--drop-after-masking", "3", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "strict majority" in result.stderr and "at most 2" in result.stderr
