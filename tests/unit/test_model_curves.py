"""The figures behind the charts: ROC points, operating-point marks, reliability bins, confusion counts, histogram."""

from __future__ import annotations

import numpy as np
import pytest

from pneumodesk.inference.histogram import probability_histogram
from pneumodesk.model import ModelBundleError
from pneumodesk.model.curves import ModelCurves, confusion_counts, model_curves, reliability_bins, roc_curve_points

LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
PROBABILITIES = np.array([0.05, 0.15, 0.35, 0.62, 0.45, 0.71, 0.85, 0.95])


def test_confusion_counts_follow_the_decision_rule_probability_at_least_threshold() -> None:
    counts = confusion_counts(LABELS, PROBABILITIES, 0.62)

    assert (counts.true_positives, counts.false_negatives) == (3, 1)  # 0.45 missed
    assert (counts.false_positives, counts.true_negatives) == (1, 3)  # 0.62 flagged: ≥ threshold
    assert counts.sensitivity == 0.75 and counts.specificity == 0.75


def test_roc_curve_runs_from_corner_to_corner_with_the_known_auc() -> None:
    roc = roc_curve_points(LABELS, PROBABILITIES)

    assert (roc.false_positive_rate[0], roc.true_positive_rate[0]) == (0.0, 0.0)
    assert (roc.false_positive_rate[-1], roc.true_positive_rate[-1]) == (1.0, 1.0)
    assert roc.auc == pytest.approx(15 / 16)  # one of 16 (positive, negative) pairs is out of order


def test_a_long_roc_curve_is_thinned_but_keeps_its_ends() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 5000)
    roc = roc_curve_points(labels, np.clip(labels * 0.2 + rng.random(5000), 0, 1), max_points=50)

    assert len(roc.false_positive_rate) <= 50
    assert roc.false_positive_rate[0] == 0.0 and roc.true_positive_rate[-1] == 1.0


def test_reliability_bins_count_mean_and_observed_rate_per_bin() -> None:
    bins = reliability_bins(LABELS, PROBABILITIES, bins=4)

    assert [b.count for b in bins] == [2, 2, 2, 2]
    assert bins[1].mean_probability == pytest.approx(0.40) and bins[1].observed_rate == 0.5
    assert bins[3].observed_rate == 1.0


def test_curves_mark_each_operating_point_and_survive_json() -> None:
    curves = model_curves(LABELS, PROBABILITIES, {"balanced": 0.62, "high-sensitivity": 0.4}, "balanced")

    marks = {m.name: (m.false_positive_rate, m.true_positive_rate) for m in curves.marks}
    assert marks == {"balanced": (0.25, 0.75), "high-sensitivity": (0.25, 1.0)}
    assert curves.confusion.threshold == 0.62
    again = ModelCurves.from_json_dict(curves.to_json_dict())
    assert again.marks == curves.marks and again.confusion == curves.confusion
    assert again.roc.auc == pytest.approx(curves.roc.auc)


def test_unreadable_curves_raise_a_model_error() -> None:
    with pytest.raises(ModelBundleError, match="curves"):
        ModelCurves.from_json_dict({"roc": {"fpr": [0.0], "tpr": [0.0, 1.0]}})


def test_histogram_bins_include_their_low_edge_and_the_last_includes_one() -> None:
    histogram = probability_histogram([0.0, 0.1, 0.55, 0.999, 1.0], threshold=0.5, bins=10)

    assert histogram.counts == (1, 1, 0, 0, 0, 1, 0, 0, 0, 2)
    assert histogram.bin_of(0.1) == 1 and histogram.bin_range(9) == (0.9, 1.0)


def test_a_new_model_card_records_its_validation_curves_at_its_operating_points() -> None:
    from pneumodesk.training.model_card import calibrate_and_describe
    from pneumodesk.training.trainer import TrainingRecipe

    rng = np.random.default_rng(3)
    labels = np.array([0, 1] * 40)
    logits = labels * 2.0 - 1.0 + rng.normal(0, 1.2, labels.size)

    card = calibrate_and_describe(TrainingRecipe(architecture="pneumonet-tiny", input_size=32), labels, logits,
                                  name="t", version="1", validation={}, training={})

    curves = ModelCurves.from_json_dict(card.validation["curves"])
    assert curves.roc.auc == pytest.approx(card.validation["roc_auc"], abs=1e-4)
    assert {m.name for m in curves.marks} == set(card.operating_points)
    assert curves.confusion.threshold == card.operating_points["balanced"].threshold
    assert sum(b.count for b in curves.reliability) == labels.size
