"""The yardstick's figures go into a bundle's card (and its dialog) without touching the weights."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from pneumodesk.imaging import XRay
from pneumodesk.model import WEIGHTS_FILE, load_bundle
from pneumodesk.training.card_evidence import GENERALISATION, compact_report, record_evaluation
from pneumodesk.training.recipe import TrainingRecipe
from pneumodesk.training.shifts import SHIFT_SUITE
from pneumodesk.training.yardstick import LabelledXRays, cross_validate, shift_suite, summarise_folds
from tests.builders import chest_like, make_tiny_bundle


def _suite_report(bundle):
    xrays = [XRay(chest_like(seed=seed), f"image-{seed}") for seed in range(12)]
    labels = np.array([seed % 2 for seed in range(12)], dtype=np.int64)
    return shift_suite(bundle, LabelledXRays(xrays, labels), shifts=SHIFT_SUITE[:3], resamples=50)


def test_shift_suite_and_cross_validation_are_recorded_in_the_card_and_the_weights_stay(tmp_path, labelled_folder):
    bundle_dir = make_tiny_bundle().save(tmp_path / "bundle")
    weights_before = hashlib.sha256((bundle_dir / WEIGHTS_FILE).read_bytes()).hexdigest()
    suite = _suite_report(load_bundle(bundle_dir))
    recipe = dataclasses.replace(TrainingRecipe(), architecture="pneumonet-tiny", input_size=32, epochs=1,
                                 batch_size=16, shift_augment=0.0)
    folds = cross_validate(labelled_folder, recipe, folds=2, shifts=SHIFT_SUITE[:1], resamples=50)

    record_evaluation(bundle_dir, "shift suite", suite, command="benchmarks/shift_suite.py --model B")
    record_evaluation(bundle_dir, "cross-validation of this recipe", folds, note="reduced scale")

    card = load_bundle(bundle_dir).card  # verifies every sha256 on load
    assert card.weights_sha256 == weights_before
    recorded = card.extra[GENERALISATION]
    shift_entry = recorded["shift suite"]
    assert list(shift_entry["conditions"]) == list(suite["conditions"])
    first_shift = SHIFT_SUITE[0].name
    row, measured = shift_entry["conditions"][first_shift], suite["conditions"][first_shift]
    assert row["roc_auc_ci95"] == measured["roc_auc_ci95"]
    assert row["specificity"] == [measured["specificity"]["value"], *measured["specificity"]["ci95"]]
    assert shift_entry["command"] == "benchmarks/shift_suite.py --model B"
    fold_entry = recorded["cross-validation of this recipe"]
    assert fold_entry["folds"] == 2 and len(fold_entry["per_fold"]) == 2 and fold_entry["note"] == "reduced scale"
    assert fold_entry["summary"]["roc_auc_median"] == folds["summary"]["roc_auc_median"]

    record_evaluation(bundle_dir, "shift suite", suite)  # the same name replaces its entry, keeps the others
    assert set(load_bundle(bundle_dir).card.extra[GENERALISATION]) == {"shift suite",
                                                                      "cross-validation of this recipe"}


def _fold(auc: float, shifts: dict[str, float]) -> dict:
    return {"roc_auc": auc, "sensitivity": {"value": 0.9}, "specificity": {"value": 0.8}, "worst_shift_roc_auc":
            min(shifts.values()),
            "shifts": {name: {"roc_auc": value, "sensitivity": 0.9, "specificity": value - 0.1}
                       for name, value in shifts.items()}}


def test_fold_summary_takes_medians_per_shift_and_names_the_worst_shift_a_reading_model_must_read():
    inverted, border, gamma = "inverted (MONOCHROME1 shown raw)", "white border 8 %", "gamma 0.6"
    rows = [_fold(0.99, {inverted: 0.2, border: 0.80, gamma: 0.97}),
            _fold(0.97, {inverted: 0.3, border: 0.90, gamma: 0.95}),
            _fold(0.98, {inverted: 0.1, border: 0.85, gamma: 0.99})]
    summary = summarise_folds(rows)
    assert summary["roc_auc_median"] == 0.98 and summary["roc_auc_range"] == [0.97, 0.99]
    assert summary["by_shift"][border] == {"roc_auc": 0.85, "sensitivity": 0.9, "specificity": 0.75}
    assert summary["worst_shift"]["shift"] == inverted and summary["worst_shift"]["roc_auc"] == 0.2
    assert summary["worst_shift_excluding_inversion"] == {"shift": border, "roc_auc": 0.85, "sensitivity": 0.9,
                                                          "specificity": 0.75}
    assert summary["median_over_shifts_excluding_inversion"]["roc_auc"] == pytest.approx(0.91)
    assert "by_shift" not in summarise_folds([{k: v for k, v in row.items() if k != "shifts"} for row in rows])


def test_a_side_by_side_report_is_refused():
    with pytest.raises(ValueError, match="several bundles"):
        compact_report({"side_by_side": {}, "models": {}})


def test_the_model_card_dialog_shows_the_recorded_figures(tmp_path):
    from pneumodesk.gui.dialogs.help import model_card_html

    bundle_dir = make_tiny_bundle().save(tmp_path / "bundle")
    suite = _suite_report(load_bundle(bundle_dir))
    record_evaluation(bundle_dir, "shift suite", suite)
    html = model_card_html(load_bundle(bundle_dir).card)
    assert "Beyond the validation split" in html
    worst = suite["worst_case"]["roc_auc"]
    assert f"{worst['value']:.3f} ({worst['shift']})" in html
    assert SHIFT_SUITE[2].name in html
    assert "Beyond the validation split" not in model_card_html(make_tiny_bundle().card)
