"""What confirmed cases are used for: recalibrating the prediction model locally (a candidate with before/after
figures; accepting it is audited as a recalibration and the new thresholds are the prediction model's), and local
performance monitoring with Wilson intervals against the model card."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pneumodesk.client.confirmed_cases import monitor_confirmed, recalibrate_on_confirmed
from pneumodesk.model import load_bundle
from pneumodesk.model.curves import ModelCurves
from pneumodesk.node import NodeService, PermissionDenied, RegisteredDatasetError
from pneumodesk.node.model_registry import RECALIBRATION_SOURCE, ModelStatus
from pneumodesk.node.readings import Reading
from pneumodesk.training.monitoring import local_performance, wilson_interval
from pneumodesk.training.recalibration import MIN_CASES_PER_CLASS, TooFewCasesError
from tests.builders import chest_like, write_png
from tests.node_builders import CLINICIAN, OWNER, seed_node, sign_in


@pytest.fixture
def node(tmp_path, tiny_bundle_dir):
    seed_node(tmp_path / "home")
    service = NodeService.open(tmp_path / "home", default_bundle=tiny_bundle_dir)
    yield service
    service.close()


def confirm(node, home: Path, folder: Path, per_class: int = MIN_CASES_PER_CLASS, start: int = 0) -> None:
    clinician = sign_in(home, CLINICIAN[0], CLINICIAN[2])
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(start, start + 2 * per_class):
        path = write_png(folder / f"scan_{index:03d}.png", chest_like(48, 48, seed=index))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        node.readings.record(clinician, digest, path, Reading.PNEUMONIA if index % 2 else Reading.NORMAL)


def test_wilson_interval_matches_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and 0.15 < high < 0.17


def test_drift_is_reported_only_when_the_card_is_above_the_local_interval():
    labels = np.array([1] * 20 + [0] * 20)
    poor = np.array([True] * 10 + [False] * 10 + [False] * 20)  # sensitivity 0.5, specificity 1.0
    report = local_performance(labels, poor, card_sensitivity=0.9, card_specificity=0.9, model_version="v")
    assert report.sensitivity.drifted and not report.specificity.drifted
    assert "Sensitivity 0.500 on 20 confirmed case(s)" in (report.warning() or "")
    fine = local_performance(labels, np.array([True] * 17 + [False] * 3 + [False] * 20), 0.9, 0.9, "v")
    assert fine.warning() is None  # 0.85 on 20 cases: the card's 0.9 is inside the interval
    empty = local_performance(np.zeros(0), np.zeros(0), 0.9, 0.9, "v")
    assert not empty.drifted and empty.sensitivity.value is None


def test_recalibrating_on_confirmed_cases_offers_a_candidate_accepted_as_a_recalibration(tmp_path, node):
    home = tmp_path / "home"
    owner = sign_in(home, OWNER[0], OWNER[2])
    with pytest.raises(RegisteredDatasetError, match="no confirmed cases dataset"):
        recalibrate_on_confirmed(node, owner)
    confirm(node, home, tmp_path / "ward", per_class=4)
    node.confirmed_cases.register(owner)
    with pytest.raises(TooFewCasesError) as refused:  # the 8 demo samples: thresholds on them would follow chance
        recalibrate_on_confirmed(node, owner)
    assert str(refused.value) == ("Recalibration needs at least 20 confirmed normal and 20 confirmed pneumonia cases; "
                                  "this workstation has 4 and 4. Thresholds fitted on fewer would follow chance.")
    assert [m.source for m in node.models.list()] != [RECALIBRATION_SOURCE]
    assert "recalibration_offered" not in [e.action for e in node.audit.read()]
    confirm(node, home, tmp_path / "ward", per_class=MIN_CASES_PER_CLASS - 4, start=8)
    node.confirmed_cases.register(owner, "Confirmed cases (all)")
    with pytest.raises(PermissionDenied):
        recalibrate_on_confirmed(node, sign_in(home, CLINICIAN[0], CLINICIAN[2]))

    offer = recalibrate_on_confirmed(node, owner)

    candidate = offer.candidate
    assert candidate.status is ModelStatus.CANDIDATE and candidate.source == RECALIBRATION_SOURCE
    assert offer.recalibration.before["threshold"] == 0.5  # the tiny card's balanced threshold
    assert candidate.metrics == {**offer.recalibration.after, "curves": offer.recalibration.curves_after}
    assert candidate.baseline_metrics == {**offer.recalibration.before, "curves": offer.recalibration.curves_before}
    for figures in (candidate.metrics, candidate.baseline_metrics):  # the Models page draws both, overlaid
        curves = ModelCurves.from_json_dict(figures["curves"])
        counts = curves.confusion
        assert counts.threshold == pytest.approx(figures["threshold"], abs=1e-4)
        assert counts.true_positives + counts.false_negatives == figures["pneumonia"] == MIN_CASES_PER_CLASS
        assert counts.true_negatives + counts.false_positives == figures["normal"] == MIN_CASES_PER_CLASS
        assert counts.sensitivity == pytest.approx(figures["sensitivity"], abs=1e-4)
        assert sum(b.count for b in curves.reliability) == 2 * MIN_CASES_PER_CLASS
    assert candidate.metrics["images"] == 2 * MIN_CASES_PER_CLASS
    new_card = load_bundle(candidate.bundle_dir).card
    old_card = load_bundle(node.models.active_bundle_dir()).card
    assert new_card.weights_sha256 == old_card.weights_sha256  # the weights are unchanged
    assert new_card.operating_points["balanced"].threshold == pytest.approx(candidate.metrics["threshold"], abs=1e-4)

    node.models.accept(owner, candidate.id)
    assert load_bundle(node.models.active_bundle_dir()).card.version == candidate.model_version
    actions = [e.action for e in node.audit.read()]
    assert "recalibration_offered" in actions and "recalibration_accepted" in actions


def test_monitoring_measures_this_months_confirmed_cases_against_the_card(tmp_path, node):
    home = tmp_path / "home"
    confirm(node, home, tmp_path / "ward", per_class=5)
    report = monitor_confirmed(node)
    assert report.sensitivity.cases == 5 and report.specificity.cases == 5
    assert report.sensitivity.card == 0.9 and report.specificity.card == 0.9  # the tiny card's balanced point
    assert report.refused == 0
    next(iter((tmp_path / "ward").glob("*.png"))).unlink()
    assert monitor_confirmed(node).refused == 1
