"""``pneumodesk demo federation`` end to end (as a user runs it), on a small slice of the shipped demo data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from pneumodesk.training.demo_data import demo_npz_path


def small_demo_npz(path, patients: int = 120, validation: int = 60):  # type: ignore[no-untyped-def]
    """Whole patients from the shipped demo file, in the same PneumoniaMNIST layout (with patient groups)."""
    with np.load(demo_npz_path()) as data:
        arrays = {key: data[key] for key in data.files}
    picked = np.random.default_rng(0).choice(np.unique(arrays["train_groups"]), patients, replace=False)
    chosen = np.isin(arrays["train_groups"], picked)
    held_out = np.random.default_rng(1).choice(len(arrays["val_labels"]), validation, replace=False)
    np.savez_compressed(
        path,
        train_images=arrays["train_images"][chosen], train_labels=arrays["train_labels"][chosen],
        train_groups=arrays["train_groups"][chosen],
        val_images=arrays["val_images"][held_out], val_labels=arrays["val_labels"][held_out],
    )
    return path


def test_demo_federation_prints_its_figures_as_the_last_line(tmp_path):
    data = small_demo_npz(tmp_path / "small.npz")

    result = subprocess.run(
        [sys.executable, "-m", "pneumodesk", "demo", "federation", "--hospitals", "3", "--rounds", "1",
         "--data", str(data), "--batch-size", "16", "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["rounds_completed"] == 1 and figures["hospitals"] == 3
    assert figures["secure_aggregation"] is True and figures["dropped"] == 0  # the default since issue 7
    assert 0 < figures["dp_epsilon_spent"] <= 8.0 + 1e-6
    assert 0.0 <= figures["final_validation_auc"] <= 1.0 and 0.0 <= figures["centralised_validation_auc"] <= 1.0
    assert figures["seconds_per_round"] > 0 and figures["bytes_sent_per_hospital"] > 10_000
    shares = figures["pneumonia_share_by_hospital"]
    assert shares == sorted(shares) and shares[0] < shares[-1]  # non-IID: class mixes differ by hospital
    assert "[demo]" in result.stderr and "[demo]" not in result.stdout
