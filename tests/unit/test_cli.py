"""``pneumodesk predict|train|evaluate`` as a user runs them."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from pneumodesk.cli import main
from tests.builders import chest_like, dicom_dataset, to_uint16, write_dicom, write_jpeg, write_png


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "worklist"
    (folder / "nested").mkdir(parents=True)
    write_jpeg(folder / "a.jpg", chest_like(120, 100, seed=1))
    write_png(folder / "nested" / "b.png", chest_like(110, 90, seed=2), "I;16")
    write_dicom(folder / "nested" / "c.dcm", dicom_dataset(to_uint16(chest_like(100, 100, seed=3)) >> 4))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    (folder / ".hidden.png").write_bytes(b"ignored: hidden")
    return folder


def read_rows(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_predict_folder_to_csv_reports_bad_files_and_goes_on(mixed_folder, tiny_bundle_dir, tmp_path, capsys):
    out = tmp_path / "results.csv"
    assert main(["predict", str(mixed_folder), "--model", str(tiny_bundle_dir), "--csv", str(out)]) == 0
    rows = read_rows(out)
    assert list(rows[0].keys()) == ["path", "probability", "label", "error"]
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert set(by_name) == {"a.jpg", "b.png", "c.dcm", "broken.jpg", "empty.png"}
    for name in ("a.jpg", "b.png", "c.dcm"):
        assert 0.0 <= float(by_name[name]["probability"]) <= 1.0
        assert by_name[name]["label"] in {"PNEUMONIA", "NORMAL"} and by_name[name]["error"] == ""
    assert by_name["empty.png"]["error"] == "The file is empty (0 bytes)."
    assert by_name["broken.jpg"]["probability"] == "" and by_name["broken.jpg"]["error"]
    printed = capsys.readouterr().out
    assert "3 of 5 predicted" in printed


def test_predict_json_and_operating_point(mixed_folder, tiny_bundle_dir, capsys):
    code = main(
        [
            "predict",
            str(mixed_folder / "a.jpg"),
            "--model",
            str(tiny_bundle_dir),
            "--json",
            "--operating-point",
            "high-sensitivity",
        ]
    )
    assert code == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["operating_point"] == "high-sensitivity" and record["threshold"] == 0.3
    assert record["label"] == ("PNEUMONIA" if record["probability"] >= 0.3 else "NORMAL")
    assert record["model_version"] == "test-1" and record["error"] is None


def test_predict_exits_non_zero_only_when_nothing_could_be_predicted(tmp_path, tiny_bundle_dir, capsys):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert main(["predict", str(tmp_path / "bad.png"), "--model", str(tiny_bundle_dir)]) == 1
    assert main(["predict", str(tmp_path / "missing-folder-or-file"), "--model", str(tiny_bundle_dir)]) == 1
    assert "does not exist" in capsys.readouterr().out
    assert main(["predict", str(tmp_path), "--model", str(tmp_path / "no-bundle")]) == 2
    assert "incomplete" in capsys.readouterr().err


def test_predict_writes_heat_maps(mixed_folder, tiny_bundle_dir, tmp_path):
    heatmaps = tmp_path / "maps"
    assert main(["predict", str(mixed_folder), "--model", str(tiny_bundle_dir), "--heatmap-dir", str(heatmaps)]) == 0
    written = sorted(p.name for p in heatmaps.iterdir())
    assert written == ["a_heatmap.png", "b_heatmap.png", "c_heatmap.png"]
    with Image.open(heatmaps / "a_heatmap.png") as image:
        assert image.size == (100, 120) and image.mode == "RGB"


def test_train_then_evaluate_from_the_command_line(labelled_folder, tmp_path, capsys):
    bundle = tmp_path / "bundle"
    code = main(
        [
            "train",
            "--data",
            str(labelled_folder),
            "--out",
            str(bundle),
            "--arch",
            "pneumonet-tiny",
            "--input-size",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--model-version",
            "cli-1",
            "--shift-augment",
            "0.25",
            "--no-shift-inversion",
        ]
    )
    assert code == 0
    assert "validation ROC-AUC" in capsys.readouterr().out
    from pneumodesk.model import load_bundle

    recipe = load_bundle(bundle).card.training["recipe"]
    assert recipe["shift_augment"] == 0.25 and recipe["shift_inversion"] is False
    assert main(["evaluate", "--data", str(labelled_folder), "--model", str(bundle), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["model_version"] == "cli-1" and metrics["images"] == 48
    assert set(metrics["operating_points"]) == {"high-sensitivity", "balanced"}
    assert main(["evaluate", "--data", str(tmp_path / "nowhere"), "--model", str(bundle)]) == 2
    assert "does not exist" in capsys.readouterr().err



def test_calibrate_refuses_data_with_too_few_images_of_a_class(tiny_bundle_dir, tmp_path, capsys):
    from tests.builders import write_labelled_folder

    few = write_labelled_folder(tmp_path / "few", per_class=5, rng=np.random.default_rng(1))
    code = main(["calibrate", "--data", str(few), "--model", str(tiny_bundle_dir), "--out", str(tmp_path / "out")])
    assert code == 2 and not (tmp_path / "out").exists()
    assert ("Recalibration needs at least 20 readable normal and 20 readable pneumonia cases; few has 5 and 5. "
            "Thresholds fitted on fewer would follow chance.") in capsys.readouterr().err

def test_calibrate_refits_thresholds_and_keeps_the_weights(labelled_folder, tiny_bundle_dir, tmp_path, capsys):
    from pneumodesk.model import load_bundle

    out = tmp_path / "local"
    code = main(
        [
            "calibrate",
            "--data",
            str(labelled_folder),
            "--model",
            str(tiny_bundle_dir),
            "--out",
            str(out),
            "--model-version",
            "site-1",
        ]
    )
    assert code == 0 and "calibrated bundle written" in capsys.readouterr().out
    before, after = load_bundle(tiny_bundle_dir), load_bundle(out)
    assert after.card.weights_sha256 == before.card.weights_sha256
    assert after.card.version == "site-1" and after.card.parameters == before.card.parameters
    assert after.card.validation["images"] == 48
    assert after.card.training["calibration"]["split"] == "all"
    sensitive, balanced = after.card.operating_points["high-sensitivity"], after.card.operating_points["balanced"]
    assert sensitive.threshold <= balanced.threshold and sensitive.sensitivity >= balanced.sensitivity
    assert after.card.temperature != before.card.temperature
