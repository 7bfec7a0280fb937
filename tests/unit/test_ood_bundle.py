"""Out-of-distribution statistics in a bundle: fitted from features, stored with a checksum, optional (older bundles
keep working and refuse nothing), and a refusal replaces the probability everywhere a prediction is shown."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pneumodesk.imaging import OutsideIntendedUseError, SourceFacts, XRay, preprocess
from pneumodesk.inference import Predictor, predict_files
from pneumodesk.model import (
    CARD_FILE,
    OOD_FILE,
    BundleIntegrityError,
    FeatureDistribution,
    ModelBundleError,
    embed_and_classify,
    load_bundle,
)
from pneumodesk.training.out_of_distribution import (
    fit_distribution,
    penultimate_features,
    threshold_for_refusal_rule,
    threshold_refusing_at_most,
    with_fitted_ood,
)
from tests.builders import chest_like, make_tiny_bundle, write_jpeg


def xray_of(pixels: np.ndarray) -> XRay:
    return XRay(pixels.astype(np.float32), SourceFacts("TEST", pixels.shape[1], pixels.shape[0], 8, "MONOCHROME2"))


def chest_inputs(count: int, size: int = 32, first_seed: int = 0) -> np.ndarray:
    return np.stack([preprocess(xray_of(chest_like(96, 80, seed=first_seed + i)), size) for i in range(count)])


def fitted_bundle(threshold: float | None = None):
    bundle = make_tiny_bundle()
    inputs = chest_inputs(40)
    labels = np.arange(40) % 2
    fitted = with_fitted_ood(bundle, inputs, labels, {"clean": chest_inputs(20, first_seed=100)}, np.arange(20) % 2)
    if threshold is not None:
        assert fitted.ood is not None
        fitted = fitted.with_ood(FeatureDistribution(fitted.ood.means, fitted.ood.precision, threshold,
                                                     fitted.ood.method))
    return fitted


def test_embedding_then_classifier_is_the_network():
    model = make_tiny_bundle().build()
    inputs = torch.as_tensor(chest_inputs(3))
    features, logits = embed_and_classify(model, inputs)
    assert features.shape == (3, 32)
    torch.testing.assert_close(logits, model(inputs).reshape(-1))


def test_mahalanobis_scores_grow_away_from_the_training_features():
    rng = np.random.default_rng(0)
    features = rng.standard_normal((400, 6))
    labels = (np.arange(400) % 2).astype(np.int64)
    features[labels == 1] += 3.0
    for method in ("mahalanobis-class", "mahalanobis-pooled"):
        distribution = fit_distribution(features, labels, method)
        near, far = distribution.scores(features[:50]), distribution.scores(features[:50] + 25.0)
        assert far.min() > near.max()
    threshold = threshold_refusing_at_most({"a": np.arange(100.0), "b": np.arange(100.0) * 2}, 0.01)
    assert threshold == 198.0  # the stricter condition decides: at most 1 % of b refused


def test_fitted_statistics_round_trip_through_the_bundle(tmp_path):
    bundle = fitted_bundle()
    bundle.save(tmp_path)
    loaded = load_bundle(tmp_path)
    assert loaded.ood is not None and bundle.ood is not None
    np.testing.assert_array_equal(loaded.ood.precision, bundle.ood.precision)
    assert loaded.ood.threshold == bundle.ood.threshold and loaded.ood.method == "mahalanobis-class"
    entry = json.loads((tmp_path / CARD_FILE).read_text())["out_of_distribution"]
    assert entry["file"] == OOD_FILE and len(entry["sha256"]) == 64
    assert entry["refused_share_by_condition"]["clean"] <= 0.01 + 1 / 20
    # fitting never touches the weights
    assert loaded.card.weights_sha256 == load_bundle(_saved(make_tiny_bundle(), tmp_path / "plain")).card.weights_sha256


def _saved(bundle, directory):
    bundle.save(directory)
    return directory


def test_a_bundle_without_statistics_loads_and_refuses_nothing(tmp_path):
    """Older bundles (no ``ood.safetensors``, no card entry at all) keep working as before."""
    make_tiny_bundle().save(tmp_path)
    card = json.loads((tmp_path / CARD_FILE).read_text())
    del card["out_of_distribution"]  # a card written before the field existed
    (tmp_path / CARD_FILE).write_text(json.dumps(card))
    bundle = load_bundle(tmp_path)
    assert bundle.ood is None and bundle.card.out_of_distribution == {}
    predictor = Predictor(bundle)
    noise = xray_of(np.random.default_rng(0).random((64, 64)))
    assert 0.0 <= predictor.predict(noise).probability <= 1.0


def test_damaged_or_missing_statistics_are_refused(tmp_path):
    fitted_bundle().save(tmp_path)
    data = bytearray((tmp_path / OOD_FILE).read_bytes())
    data[-1] ^= 0x01
    (tmp_path / OOD_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="out-of-distribution"):
        load_bundle(tmp_path)
    (tmp_path / OOD_FILE).unlink()
    with pytest.raises(ModelBundleError, match=r"ood\.safetensors"):
        load_bundle(tmp_path)


def test_saving_without_statistics_removes_a_stale_file(tmp_path):
    fitted_bundle().save(tmp_path)
    plain = load_bundle(tmp_path).with_ood(None)
    plain.save(tmp_path)
    assert not (tmp_path / OOD_FILE).exists() and load_bundle(tmp_path).ood is None


def test_refused_inputs_get_no_probability_anywhere(tmp_path):
    predictor = Predictor(fitted_bundle(threshold=-1.0))  # every input beyond the threshold
    xray = xray_of(chest_like(96, 80, seed=5))
    with pytest.raises(OutsideIntendedUseError, match="intended use"):
        predictor.predict(xray)
    with pytest.raises(OutsideIntendedUseError, match="intended use"):
        predictor.predict_with_heatmap(xray)
    path = write_jpeg(tmp_path / "a.jpeg", chest_like(96, 80, seed=6))
    [result] = list(predict_files(predictor, [path]))
    assert result.prediction is None and result.outside_intended_use
    assert result.error and "intended use" in result.error

    accepting = Predictor(fitted_bundle(threshold=float("inf")))
    assert accepting.predict(xray).probability == pytest.approx(Predictor(make_tiny_bundle()).predict(xray).probability)
    _, heatmap = accepting.predict_with_heatmap(xray)
    assert heatmap.shape == (96, 80)


def test_penultimate_features_are_deterministic():
    bundle = make_tiny_bundle()
    first, logits = penultimate_features(bundle, chest_inputs(5))
    second, _ = penultimate_features(bundle, chest_inputs(5))
    np.testing.assert_array_equal(first, second)
    assert first.shape == (5, 32) and logits.shape == (5,)


def test_recalibration_keeps_the_check_of_the_same_weights(labelled_folder, tmp_path):
    from pneumodesk.training.recalibration import recalibrate_bundle

    bundle = fitted_bundle()
    recalibrated = recalibrate_bundle(bundle, labelled_folder, "all", tmp_path / "recalibrated")
    assert recalibrated.ood is not None and bundle.ood is not None
    assert recalibrated.ood.threshold == bundle.ood.threshold
    np.testing.assert_array_equal(recalibrated.ood.means, bundle.ood.means)


def test_a_local_recalibration_on_confirmed_cases_keeps_the_check(tmp_path):
    """The Confirmed cases' recalibration (``recalibrate_on_images``) offers the same weights with new thresholds:
    the candidate refuses what the model in use refuses."""
    from pneumodesk.training.recalibration import recalibrate_on_images
    from tests.builders import write_png

    bundle = fitted_bundle(threshold=-1.0)  # refuses every input: the check must survive to keep doing so
    files = [(write_png(tmp_path / f"case_{i}.png", chest_like(96, 80, seed=200 + i)), i % 2) for i in range(40)]
    result = recalibrate_on_images(bundle, files, tmp_path / "candidate", version="local", source="confirmed cases")
    assert result.bundle.ood is not None and bundle.ood is not None
    assert result.bundle.ood.threshold == bundle.ood.threshold
    np.testing.assert_array_equal(result.bundle.ood.means, bundle.ood.means)
    assert load_bundle(tmp_path / "candidate").card.out_of_distribution["sha256"]
    with pytest.raises(OutsideIntendedUseError, match="intended use"):
        Predictor(load_bundle(tmp_path / "candidate")).predict(xray_of(chest_like(96, 80, seed=5)))


def test_a_shift_trained_recipe_fits_its_statistics_on_shifted_copies_too():
    """Fitted on the training images and one shifted copy of each, the check knows the shifted images the model was
    trained on: a shifted input scores nearer than under statistics of the unshifted images alone."""
    from pneumodesk.training.pipeline import shifted_copies_of_recipe

    assert shifted_copies_of_recipe({"shift_augment": 0.0, "seed": 1}) is None
    assert shifted_copies_of_recipe({}) is None  # cards from before shift-aware training
    copies = shifted_copies_of_recipe({"shift_augment": 0.5, "seed": 1, "shift_inversion": False})
    assert copies is not None
    bundle, inputs, labels = make_tiny_bundle(), chest_inputs(40), np.arange(40) % 2
    shifted = copies(inputs)
    assert shifted.shape == inputs.shape and not np.allclose(shifted, inputs)
    calibration = {"clean": chest_inputs(20, first_seed=100)}
    plain = with_fitted_ood(bundle, inputs, labels, calibration, np.arange(20) % 2)
    seen = []
    widened = with_fitted_ood(bundle, inputs, labels, calibration, np.arange(20) % 2,
                              shifted_copies=lambda rows: seen.append(rows) or shifted)
    assert len(seen) == 1 and seen[0] is inputs
    assert "shifted copy" in widened.card.out_of_distribution["fitted_on"]
    assert plain.ood is not None and widened.ood is not None
    features, _ = penultimate_features(bundle, shifted)
    expected = fit_distribution(np.concatenate([penultimate_features(bundle, inputs)[0], features]),
                                np.r_[labels, labels])
    np.testing.assert_allclose(widened.ood.means, expected.means, rtol=1e-5)
    assert np.median(widened.ood.scores(features)) < np.median(plain.ood.scores(features))


def test_the_refusal_rule_caps_clean_pooled_and_each_shift():
    """At most 1 % of clean X-rays, 1 % of all shifted ones pooled, 5 % of any one shift: a rare rendering far
    out (a thick frame) may lose up to 5 % instead of pushing the threshold out to its 99th percentile."""
    clean = np.arange(100.0)  # 1 % cap alone: 99
    mild = {f"mild {i}": np.arange(100.0) + 1 for i in range(19)}  # 1 % cap each: 100
    framed = np.linspace(0.0, 500.0, 100)  # 1 % cap: 500; 5 % cap: about 480
    conditions = {"clean": clean, **mild, "framed": framed}
    threshold = threshold_for_refusal_rule(conditions, "clean")
    refused = {name: float(np.mean(values > threshold)) for name, values in conditions.items()}
    pooled = float(np.mean(np.concatenate([v for k, v in conditions.items() if k != "clean"]) > threshold))
    assert refused["clean"] <= 0.01 and pooled <= 0.01 and max(refused.values()) <= 0.05
    assert threshold < threshold_refusing_at_most(conditions, 0.01) == 500.0  # the old rule: every condition at 1 %
    assert refused["framed"] > 0.01  # the frame pays, within its 5 %
    # each cap binds on its own
    assert threshold_for_refusal_rule({"clean": clean}, "clean") == 99.0
    many_far = {"clean": clean, **{f"far {i}": np.arange(100.0) * 3 for i in range(20)}}
    assert threshold_for_refusal_rule(many_far, "clean") == 297.0  # pooled 1 % of 2000 shifted scores
