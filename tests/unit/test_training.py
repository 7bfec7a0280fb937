"""Datasets, the patient-grouped split, metrics, calibration, and a whole (tiny) training run to a bundle."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pneumodesk.model import load_bundle
from pneumodesk.training import (
    TrainingDataError,
    TrainingRecipe,
    grouped_split,
    patient_group,
    scan_folder,
    train_bundle,
)
from pneumodesk.training.datasets import load_npz
from pneumodesk.training.evaluation import evaluate_bundle
from pneumodesk.training.metrics import (
    expected_calibration_error,
    fit_temperature,
    roc_auc_with_ci,
    sensitivity_specificity,
    sigmoid,
    threshold_balanced,
    threshold_for_sensitivity,
)
from pneumodesk.training.shifts import SHIFT_SUITE
from pneumodesk.training.trainer import train_model
from pneumodesk.training.yardstick import CLEAN
from tests.builders import chest_like, write_jpeg


@pytest.mark.parametrize(
    "name,group",
    [
        ("person1000_bacteria_2931.jpeg", "person1000"),
        ("person1000_virus_1681.jpeg", "person1000"),
        ("IM-0115-0001.jpeg", "IM-0115"),
        ("NORMAL2-IM-0115-0002.jpeg", "IM-0115"),
        ("scan_42.png", "scan_42"),
    ],
)
def test_patient_group(name, group):
    assert patient_group(name) == group


def test_scan_folder_groups_duplicates_and_refuses_bad_layouts(tmp_path):
    with pytest.raises(TrainingDataError, match="NORMAL/ and PNEUMONIA/"):
        scan_folder(tmp_path)
    for label in ("NORMAL", "PNEUMONIA"):
        (tmp_path / label).mkdir()
    pixels = chest_like(64, 64)
    write_jpeg(tmp_path / "NORMAL" / "a_1.jpeg", pixels)
    (tmp_path / "NORMAL" / "b_2.jpeg").write_bytes((tmp_path / "NORMAL" / "a_1.jpeg").read_bytes())  # duplicate
    write_jpeg(tmp_path / "PNEUMONIA" / "person7_virus_1.jpeg", chest_like(64, 64, seed=1))
    (tmp_path / "PNEUMONIA" / "readme.txt").write_text("not an image")
    dataset = scan_folder(tmp_path)
    assert [image.path.name for image in dataset.images] == ["a_1.jpeg", "b_2.jpeg", "person7_virus_1.jpeg"]
    assert dataset.images[0].group == dataset.images[1].group
    assert dataset.labels.tolist() == [0, 0, 1]


def test_grouped_split_keeps_patients_together_and_is_reproducible():
    groups = [f"p{i // 3}" for i in range(600)]  # 200 patients, three images each
    labels = np.array([int(g[1:]) % 4 != 0 for g in groups], dtype=np.int64)  # ~75 % positive, constant per patient
    train, validation = grouped_split(labels, groups, seed=5)
    assert set(train).isdisjoint(validation) and len(train) + len(validation) == 600
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in validation})
    assert 0.07 < len(validation) / 600 < 0.13
    assert abs(labels[validation].mean() - labels.mean()) < 0.08
    again_train, again_validation = grouped_split(labels, groups, seed=5)
    assert np.array_equal(validation, again_validation) and np.array_equal(train, again_train)
    assert not np.array_equal(validation, grouped_split(labels, groups, seed=6)[1])


def test_roc_auc_and_confidence_interval():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert roc_auc_with_ci(labels, np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]), resamples=200)[0] == 1.0
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 400)
    scores = labels + rng.normal(0, 1.0, 400)
    auc, (low, high) = roc_auc_with_ci(labels, scores, resamples=300)
    assert low < auc < high and 0.7 < auc < 0.85 and high - low < 0.15


def test_sensitivity_specificity_and_thresholds():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    probabilities = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8, 0.9, 0.95])
    assert sensitivity_specificity(labels, probabilities, 0.5) == (5 / 6, 3 / 4)
    sensitive = threshold_for_sensitivity(labels, probabilities, 0.95)
    assert sensitive.sensitivity >= 0.95 and sensitive.threshold == 0.4
    balanced = threshold_balanced(labels, probabilities)
    assert balanced.sensitivity + balanced.specificity >= max(
        sum(sensitivity_specificity(labels, probabilities, t)) for t in probabilities
    )


def test_temperature_scaling_recovers_a_known_miscalibration():
    rng = np.random.default_rng(2)
    true_logits = rng.normal(0.5, 2.0, 20000)
    labels = (rng.random(20000) < sigmoid(true_logits)).astype(np.int64)
    overconfident = (true_logits - 0.3) * 3.0  # what a network might output: T = 3, bias 0.3 after scaling
    temperature, bias = fit_temperature(labels, overconfident)
    assert temperature == pytest.approx(3.0, rel=0.08)
    assert bias == pytest.approx(0.3, abs=0.08)
    before = expected_calibration_error(labels, sigmoid(overconfident))
    after = expected_calibration_error(labels, sigmoid(overconfident / temperature + bias))
    assert after < 0.02 < before



def test_a_perfectly_separated_handful_gives_finite_calibration_and_thresholds():
    """4 normal and 4 pneumonia images, perfectly separated (the 8 demo samples): the plain log loss has no minimum,
    so the temperature ran to 0 and the balanced threshold to 1.000. With Platt's smoothed targets the fit stays
    finite and the operating points sit between the classes."""
    from pneumodesk.training.model_card import calibrate_and_describe

    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    logits = np.array([-3.0, -2.2, -1.4, -0.5, 0.5, 1.3, 2.1, 3.0])
    temperature, bias = fit_temperature(labels, logits)
    assert 0.3 < temperature < 10 and abs(bias) < 2
    probabilities = sigmoid(logits / temperature + bias)
    assert probabilities.min() > 0.02 and probabilities.max() < 0.98

    card = calibrate_and_describe(TrainingRecipe(architecture="pneumonet-tiny", input_size=32), labels, logits,
                                  name="n", version="v", validation={}, training={})
    for point in card.operating_points.values():
        assert 0.05 < point.threshold < 0.95
        assert (point.sensitivity, point.specificity) == (1.0, 1.0)

def test_npz_layout(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        train_images=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 2, (10, 1)),
        val_images=rng.integers(0, 255, (4, 28, 28), dtype=np.uint8),
        val_labels=rng.integers(0, 2, (4, 1)),
    )
    train, validation = load_npz(path, 32)
    assert train.inputs.shape == (10, 1, 32, 32) and validation.labels.shape == (4,)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(TrainingDataError):
        load_npz(tmp_path / "bad.npz", 32)


def test_training_run_produces_a_calibrated_documented_bundle(labelled_folder, tmp_path):
    recipe = TrainingRecipe(architecture="pneumonet-tiny", input_size=32, epochs=6, batch_size=8, learning_rate=3e-3)
    epochs = []
    bundle = train_bundle(labelled_folder, tmp_path / "bundle", recipe, command="test", on_epoch=epochs.append)
    assert [report.epoch for report in epochs] == list(range(1, 7))
    loaded = load_bundle(tmp_path / "bundle")
    card = loaded.card
    assert card == bundle.card and card.weights_sha256
    assert card.architecture == "pneumonet-tiny" and card.input_size == 32
    assert set(card.operating_points) == {"high-sensitivity", "balanced"}
    assert card.operating_points["high-sensitivity"].sensitivity >= 0.95
    assert card.temperature > 0
    low, high = card.validation["roc_auc_ci95"]
    assert low <= card.validation["roc_auc"] <= high
    assert card.validation["roc_auc"] > 0.8  # the synthetic opacities are easy to learn
    assert card.training["recipe"]["seed"] == recipe.seed and "Kermany" in card.training["citation"][0]
    assert card.training["recipe"]["shift_augment"] == 0.5 and card.training["recipe"]["shift_inversion"] is False
    # the operating points are chosen on the validation images clean and under the shift suite, and the card says so
    chosen = card.validation["operating_points_chosen_on"]
    assert chosen["conditions"][0] == CLEAN and "shift suite" in chosen["basis"]
    assert len(chosen["conditions"]) + len(chosen["left_out_model_fails_there"]) == 1 + len(SHIFT_SUITE)
    assert "shift suite" in card.operating_points["balanced"].description
    assert json.loads((tmp_path / "bundle" / "model_card.json").read_text())["validation"]["images"] >= 4
    # the out-of-distribution check is fitted at training time and travels in the bundle
    assert loaded.ood is not None and loaded.ood.threshold == card.out_of_distribution["threshold"]
    assert card.out_of_distribution["file"] == "ood.safetensors"
    assert max(card.out_of_distribution["refused_share_by_condition"].values()) <= 0.25  # tiny split: coarse

    metrics = evaluate_bundle(loaded, labelled_folder, "validation")
    assert metrics["images"] == card.validation["images"]
    assert metrics["roc_auc"] == pytest.approx(card.validation["roc_auc"], abs=1e-3)


def test_training_is_reproducible(labelled_folder, tmp_path):
    recipe = TrainingRecipe(architecture="pneumonet-tiny", input_size=32, epochs=1, batch_size=8)
    first = train_bundle(labelled_folder, tmp_path / "a", recipe)
    second = train_bundle(labelled_folder, tmp_path / "b", recipe)
    assert first.card.weights_sha256 == second.card.weights_sha256
    assert first.card.out_of_distribution["sha256"] == second.card.out_of_distribution["sha256"]


def test_shift_aware_augmentation_is_part_of_the_recipe():
    import torch

    from pneumodesk.model import build_model

    rng = np.random.default_rng(5)
    inputs = rng.standard_normal((16, 1, 32, 32)).astype(np.float32)
    labels = np.array([0, 1] * 8)
    recipe = TrainingRecipe(architecture="pneumonet-tiny", input_size=32, epochs=1, batch_size=8)

    def weights(chosen: TrainingRecipe) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = build_model(chosen.architecture)
        train_model(model, chosen, inputs, labels, inputs[:4], labels[:4])
        return [p.detach().clone() for p in model.parameters()]

    with_shifts, without = weights(recipe), weights(dataclasses.replace(recipe, shift_augment=0.0))
    assert TrainingRecipe().shift_augment > 0  # on by default
    assert any(not torch.equal(a, b) for a, b in zip(with_shifts, without, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(with_shifts, weights(recipe), strict=True))  # still reproducible


def test_weight_averaging_ends_with_the_moving_average_of_every_step():
    import torch

    from pneumodesk.model import build_model

    rng = np.random.default_rng(6)
    inputs = rng.standard_normal((24, 1, 32, 32)).astype(np.float32)
    labels = np.array([0, 1] * 12)
    decay = 0.8
    recipe = TrainingRecipe(architecture="pneumonet-tiny", input_size=32, epochs=2, batch_size=8, shift_augment=0.0,
                            weight_averaging=decay)
    torch.manual_seed(0)
    model = build_model(recipe.architecture)
    after_each_step: list[dict[str, torch.Tensor]] = []
    train_model(model, recipe, inputs, labels, inputs[:4], labels[:4],
                on_batch=lambda *_: after_each_step.append({k: v.detach().clone() for k, v in
                                                            model.named_parameters()}))
    assert len(after_each_step) == 6
    expected = after_each_step[0]
    for step in after_each_step[1:]:
        expected = {name: decay * expected[name] + (1 - decay) * step[name] for name in expected}
    final = dict(model.named_parameters())
    for name, value in expected.items():
        torch.testing.assert_close(final[name].detach(), value)
    assert any(not torch.equal(final[name].detach(), after_each_step[-1][name]) for name in final)


def test_training_can_start_from_an_earlier_bundle(labelled_folder, tiny_bundle_dir, tmp_path):
    from pneumodesk.model import ModelError

    start = load_bundle(tiny_bundle_dir)
    frozen = TrainingRecipe(architecture="pneumonet-tiny", input_size=32, epochs=1, batch_size=8,
                            learning_rate=0.0, weight_decay=0.0)
    bundle = train_bundle(labelled_folder, tmp_path / "b", frozen, init_from=tiny_bundle_dir)
    assert bundle.card.weights_sha256 == start.card.weights_sha256  # no step taken: the starting weights, unchanged
    assert bundle.card.training["initialised_from"] == {"name": start.card.name, "version": start.card.version,
                                                        "weights_sha256": start.card.weights_sha256}
    fresh = train_bundle(labelled_folder, tmp_path / "c", frozen)
    assert fresh.card.weights_sha256 != start.card.weights_sha256 and "initialised_from" not in fresh.card.training
    with pytest.raises(ModelError, match="cannot be the starting point"):
        train_bundle(labelled_folder, tmp_path / "d", dataclasses.replace(frozen, input_size=64),
                     init_from=tiny_bundle_dir)
