"""Charts on the pages, checked by the figures they show: the Predict page's histogram (and filtering the worklist by
clicking a bin), the Federation page's per-round AUC and bytes, the Training page's ε over time."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from pneumodesk.federation import TrainingPlan
from pneumodesk.gui.main_window import MainWindow
from pneumodesk.inference.histogram import bin_index
from tests.builders import chest_like, write_png
from tests.gui.conftest import run_batch
from tests.gui.test_models_page import candidate_bundle
from tests.node_builders import OWNER, sign_in

PLAN_SHA = "ab" * 32


@pytest.fixture
def owner_window(make_window, home) -> MainWindow:
    return make_window(as_user=sign_in(home, OWNER[0], OWNER[2]))


def shown_names(page) -> list[str]:
    return [page.proxy.index(r, 0).data() for r in range(page.proxy.rowCount())]


def test_the_histogram_counts_the_worklist_and_a_clicked_bin_filters_it(qtbot, window, tmp_path):
    paths = [write_png(tmp_path / f"x{i}.png", chest_like(72, 72, seed=i)) for i in range(8)]
    page = window.predict_page
    run_batch(qtbot, window, paths)
    qtbot.waitUntil(lambda: sum(page.histogram.histogram.counts) == 8)
    probabilities = {item.name: item.prediction.probability for item in page.model.entries()}
    threshold = page.batch_predictor.operating_point.threshold

    histogram = page.histogram.histogram
    assert histogram.threshold == threshold
    assert ("operating point threshold", f"{threshold:.3f}", "") in page.histogram.values.rows
    for index, count in enumerate(histogram.counts):
        assert count == sum(bin_index(p) == index for p in probabilities.values())

    busiest = max(range(histogram.bins), key=histogram.counts.__getitem__)
    low, high = histogram.bin_range(busiest)
    page.histogram.resize(600, 260)
    where = page.histogram.scene_position((low + high) / 2, 0.5).toPoint()
    with qtbot.waitSignal(page.histogram.bin_selected):
        qtbot.mouseClick(page.histogram.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)

    expected = {name for name, p in probabilities.items() if bin_index(p) == busiest}
    assert set(shown_names(page)) == expected
    assert "click the bar again to show all" in page.histogram.title_label.text()

    page.histogram.select_bin(-1)
    assert len(shown_names(page)) == 8


def test_a_bin_filter_combines_with_the_positives_filter(qtbot):
    from pneumodesk.gui.widgets.worklist_model import FilterMode, WorklistFilter, WorklistModel
    from pneumodesk.inference import Prediction

    model = WorklistModel()
    proxy = WorklistFilter(model)
    rows = model.add_paths([Path(f"{name}.png") for name in ("a", "b", "c", "pending")])
    for row, (p, label) in zip(rows, ((0.52, "PNEUMONIA"), (0.55, "NORMAL"), (0.91, "PNEUMONIA")), strict=False):
        model.set_result(row, Prediction(p, label, "custom", 0.53, "v1"), None, "sha", None)

    proxy.set_probability_bin(5)
    in_bin = {proxy.index(r, 0).data() for r in range(proxy.rowCount())}
    proxy.set_mode(FilterMode.POSITIVES)
    positive_in_bin = {proxy.index(r, 0).data() for r in range(proxy.rowCount())}
    proxy.set_probability_bin(-1)

    assert in_bin == {"a.png", "b.png"}
    assert positive_in_bin == {"a.png"}
    assert {proxy.index(r, 0).data() for r in range(proxy.rowCount())} == {"a.png", "c.png"}


def test_federation_charts_show_auc_per_round_and_bytes_sent_per_round(qtbot, owner_window, tmp_path):
    node = owner_window.node
    for round_number, auc in ((2, 0.71), (1, 0.64)):
        node.models.add_candidate(candidate_bundle(tmp_path / f"r{round_number}", f"v{round_number}", round_number),
                                  "federation plan abab", PLAN_SHA, round_number, round_number,
                                  {"roc_auc": auc}, {"roc_auc": 0.5})
    for endpoint, sent in (("/api/v1/rounds/7/update", 40_000), ("/api/v1/rounds/7/secagg/keys", 1_000),
                           ("/api/v1/rounds/9/update", 42_000), (f"/api/v1/plans/{PLAN_SHA}/join", 500)):
        node.egress.record("PUT", endpoint, sent, 100, 200, "upload")

    owner_window.show_page("Federation")
    page = owner_window.federation_page
    page.refresh()

    charts = page.round_charts
    qtbot.waitUntil(lambda: charts.sent.values.rows != () and not charts.calls.busy)
    assert charts.auc.values.rows == ((f"plan {PLAN_SHA[:12]}", "1", "0.640"), (f"plan {PLAN_SHA[:12]}", "2", "0.710"))
    assert charts.sent.values.rows == (("7", "41,000"), ("9", "42,000"))


def test_training_chart_shows_epsilon_over_time_against_the_cap_and_what_plans_hold(qtbot, owner_window,
                                                                                    labelled_folder):
    node, session = owner_window.node, owner_window.session
    dataset = node.datasets.register(session, "Ward A", labelled_folder)
    plan = TrainingPlan.model_validate({
        "name": "refresh", "architecture": "pneumonet-tiny", "input_size": 32, "base_model_sha256": PLAN_SHA,
        "learning_rate": 0.05, "batch_size": 8, "local_epochs": 1, "rounds": 2, "min_nodes": 3,
        "secure_aggregation": True, "dp": {"enabled": True, "target_epsilon": 4.0}})
    node.approvals.approve(session, plan, dataset.id, "https://127.0.0.1:8443", 4.0)
    node.ledger.record(dataset.id, plan.sha256, 1, 1.25, 1e-5, 1.1, 0.1, 10)
    node.ledger.record(dataset.id, plan.sha256, 2, 1.5, 1e-5, 1.1, 0.1, 10)

    owner_window.show_page("Training")
    page = owner_window.approvals_page
    page.refresh()

    rows = page.budget_chart.values.rows
    assert [row[2] for row in rows if row[0] == "Ward A"] == ["1.25", "2.75"]
    assert ("Ward A: spent + held by approved plans", "", "4.00") in rows  # 2.75 spent + 1.25 the plan may spend
    cap = node.policy.get().epsilon_cap_per_dataset
    assert ("cap per dataset", "", f"{cap:.2f}") in rows
