"""``pneumodesk gui --screenshots DIR`` writes one readable, dark-themed PNG per page and exits."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pneumodesk.cli import main

PAGES = ("worklist.png", "viewer-heatmap.png", "model-card.png", "shortcuts.png", "pacs-query.png", "settings.png",
         "accounts.png", "audit.png", "datasets.png", "plan-review.png", "training.png", "models.png", "federation.png",
         "sign-in.png", "worklist-histogram-filter.png", "model-card-curves.png", "viewer-reading.png",
         "confirmed-cases.png", "recalibration.png")


def test_screenshot_command_writes_non_empty_images(qtbot, tiny_bundle_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMODESK_HOME", str(tmp_path / "user-home-must-stay-untouched"))
    out = tmp_path / "shots"

    assert main(["gui", "--model", str(tiny_bundle_dir), "--screenshots", str(out)]) == 0

    assert sorted(p.name for p in out.iterdir()) == sorted(PAGES)
    for name in PAGES:
        with Image.open(out / name) as image:
            grey = np.asarray(image.convert("L"), dtype=np.float32)
        assert grey.shape[0] >= 400 and grey.shape[1] >= 500, name
        assert grey.std() > 10, f"{name} looks blank"
    with Image.open(out / "worklist.png") as image:
        assert np.asarray(image.convert("L")).mean() < 100  # dark theme by default
    assert not (tmp_path / "user-home-must-stay-untouched" / "verdicts.json").exists()
    assert not (tmp_path / "user-home-must-stay-untouched" / "node.sqlite3").exists()


def test_screenshot_command_says_why_when_the_model_cannot_load(qtbot, tmp_path, capsys):
    (tmp_path / "no_bundle").mkdir()

    status = main(["gui", "--model", str(tmp_path / "no_bundle"), "--screenshots", str(tmp_path / "shots")])

    assert status == 1
    assert "The model did not load" in capsys.readouterr().err
    assert not any((tmp_path / "shots").glob("*.png"))
