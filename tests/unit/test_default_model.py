"""The bundled default model and samples: complete, verified, within size, and right on the shipped samples."""

from __future__ import annotations

import pytest

from pneumodesk.cli import main
from pneumodesk.inference import Predictor, expand_paths, predict_files
from pneumodesk.model import WEIGHTS_FILE, default_bundle_path, load_bundle
from pneumodesk.model.default import samples_path


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor.from_path()


def test_default_bundle_is_complete_and_verified():
    bundle = load_bundle(default_bundle_path())
    card = bundle.card
    assert (default_bundle_path() / WEIGHTS_FILE).stat().st_size <= 25 * 1024 * 1024
    assert card.architecture == "pneumonet-m" and card.input_size == 224
    assert {"high-sensitivity", "balanced"} <= set(card.operating_points)
    assert card.operating_points["high-sensitivity"].sensitivity >= 0.95
    low, high = card.validation["roc_auc_ci95"]
    assert low <= card.validation["roc_auc"] <= high
    assert "Kermany" in " ".join(card.training["citation"])
    assert card.training["recipe"]["seed"] and card.training["command"].startswith("pneumodesk train")
    assert card.intended_use and card.limitations and card.created


def test_samples_ship_with_attribution():
    samples = expand_paths([samples_path()])
    assert len(samples) == 8
    assert "CC BY 4.0" in (samples_path() / "README.md").read_text()


def test_default_model_separates_the_samples(predictor):
    """The samples were drawn at random from the validation split (never trained on); file names carry the truth.
    The model is not perfect (a viral pneumonia sample scores low), but it must rank and decide mostly right."""
    results = list(predict_files(predictor, expand_paths([samples_path()])))
    truth = {r.path.name: r.path.name.startswith("pneumonia") for r in results}
    probability = {r.path.name: r.prediction.probability for r in results}
    pneumonia = [probability[name] for name, positive in truth.items() if positive]
    normal = [probability[name] for name, positive in truth.items() if not positive]
    assert len(pneumonia) == len(normal) == 4
    assert sum(p > n for p in pneumonia for n in normal) >= 14  # of 16 pairs: an AUC of at least 0.875
    right = sum(r.prediction.is_pneumonia == truth[r.path.name] for r in results)
    assert right >= 7


def test_pneumodesk_predict_on_the_samples(capsys):
    assert main(["predict", str(samples_path())]) == 0
    printed = capsys.readouterr().out
    assert "8 of 8 predicted" in printed and "on this workstation only" in printed


def _png_of_ct_slice(target):
    """pydicom's own CT test slice, exported to PNG as a user might (a PNG says nothing about its modality)."""
    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.data import get_testdata_file

    pixels = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array.astype(np.float64)
    low, high = np.percentile(pixels, [0.5, 99.5])
    grey = np.clip((pixels - low) / (high - low), 0, 1)
    Image.fromarray(np.round(grey * 255).astype(np.uint8)).save(target)
    return target


def _colour_picture(target):
    """A photograph-like colour picture: smooth coloured regions, a horizon and sky, nothing like a radiograph."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:300, 0:400] / 300.0
    sky = np.stack([0.4 + 0.2 * y, 0.6 + 0.2 * y, 0.95 - 0.1 * y], axis=-1)
    ground = np.stack([0.25 + 0.1 * np.sin(9 * x), 0.5 + 0.1 * np.cos(7 * x + y), 0.15 + 0 * x], axis=-1)
    picture = np.where((y > 0.55 + 0.05 * np.sin(6 * x))[..., None], ground, sky)
    sun = ((x - 1.0) ** 2 + (y - 0.2) ** 2) < 0.01
    picture[sun] = (1.0, 0.9, 0.3)
    Image.fromarray(np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8), mode="RGB").save(target)
    return target


def test_default_model_refuses_images_unlike_chest_xrays_and_answers_the_samples(predictor, tmp_path):
    """Its out-of-distribution check (fitted on its training images, stored in the bundle) refuses a CT slice and
    a colour picture, and gives every shipped sample X-ray a probability."""
    assert predictor.bundle.ood is not None
    outside = [_png_of_ct_slice(tmp_path / "ct.png"), _colour_picture(tmp_path / "photo.png")]
    refused = list(predict_files(predictor, outside))
    assert all(r.prediction is None and r.outside_intended_use for r in refused)
    assert all(r.error and r.error.startswith("Outside the model's intended use") for r in refused)
    answered = list(predict_files(predictor, expand_paths([samples_path()])))
    assert all(r.prediction is not None for r in answered)


def test_pneumodesk_predict_csv_puts_the_refusal_in_the_error_column(tmp_path):
    import csv

    folder = tmp_path / "mixed"
    folder.mkdir()
    _png_of_ct_slice(folder / "ct.png")
    sample = sorted(samples_path().glob("*.jpeg"))[0]
    (folder / sample.name).write_bytes(sample.read_bytes())
    assert main(["predict", str(folder), "--csv", str(tmp_path / "out.csv")]) == 0
    rows = {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader((tmp_path / "out.csv").open())}
    assert rows["ct.png"]["probability"] == "" and rows["ct.png"]["error"].startswith("Outside the model's")
    assert rows[sample.name]["probability"] and not rows[sample.name]["error"]
