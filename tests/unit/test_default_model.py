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
