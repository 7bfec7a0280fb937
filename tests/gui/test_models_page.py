"""The Models page (local acceptance gate): a candidate's figures beside the current model's; accepting it makes it
the prediction model (the Predict page reloads and uses it); restoring an earlier one; rejecting a candidate."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from pneumodesk.gui.main_window import MainWindow
from pneumodesk.model import ModelBundle
from tests.builders import chest_like, make_tiny_bundle, write_png
from tests.gui.conftest import LOAD_TIMEOUT_MS, run_batch
from tests.node_builders import OWNER, sign_in

CANDIDATE_FIGURES = {"roc_auc": 0.91, "roc_auc_ci95": [0.85, 0.96], "sensitivity": 0.9, "specificity": 0.8,
                     "images": 10}
CURRENT_FIGURES = {"roc_auc": 0.5, "roc_auc_ci95": [0.4, 0.6], "sensitivity": 0.6, "specificity": 0.55,
                   "images": 10}


def candidate_bundle(folder: Path, version: str, seed: int) -> Path:
    tiny = make_tiny_bundle(seed=seed)
    return ModelBundle(tiny.card.with_updates(name="federated model", version=version), tiny.state_dict).save(folder)


def add_candidate(window: MainWindow, folder: Path, version: str, seed: int) -> int:
    model = window.node.models.add_candidate(candidate_bundle(folder, version, seed), "federation plan abc123",
                                             None, 2, 3, CANDIDATE_FIGURES, CURRENT_FIGURES)
    return model.id


@pytest.fixture
def owner_window(make_window, home) -> MainWindow:
    return make_window(as_user=sign_in(home, OWNER[0], OWNER[2]))


def open_models(qtbot, window: MainWindow, rows: int):
    window.show_page("Models")
    page = window.models_page
    page.refresh()
    qtbot.waitUntil(lambda: page.table.rowCount() == rows and not page.calls.busy, timeout=LOAD_TIMEOUT_MS)
    return page


def figures(page) -> dict[str, tuple[str, ...]]:
    table = page.figures
    return {table.item(r, 0).text(): tuple(table.item(r, c).text() for c in range(1, 4))
            for r in range(table.rowCount())}


def test_accepting_a_candidate_makes_predict_use_it_and_restore_goes_back(qtbot, owner_window, tmp_path):
    candidate = add_candidate(owner_window, tmp_path / "candidate", "federated-v3", seed=5)
    page = open_models(qtbot, owner_window, rows=2)
    page.select(candidate)

    assert figures(page)["ROC AUC"] == ("0.910", "0.500", "+0.410")
    assert figures(page)["ROC AUC, 95 % interval"] == ("0.850–0.960", "0.400–0.600", "")
    assert figures(page)["Validation images"] == ("10", "10", "")
    assert "beside the model that was in use" in page.figures_title.text()
    assert page.accept_button.isEnabled() and page.reject_button.isEnabled() and not page.restore_button.isEnabled()

    with qtbot.waitSignal(owner_window.model_loaded, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(page.accept_button, Qt.MouseButton.LeftButton)

    assert owner_window.predictor.model_version == "federated-v3"
    assert owner_window.model_label.text() == "Model: federated model · version federated-v3"
    assert owner_window.node.models.active().id == candidate
    assert owner_window.node.audit.read(action="model_accepted")[0].user == OWNER[0]
    image = write_png(tmp_path / "xray.png", chest_like(80, 80, seed=3))
    run_batch(qtbot, owner_window, [image])
    assert owner_window.predict_page.model.entry(0).prediction.model_version == "federated-v3"

    first = owner_window.node.models.list()[-1]
    page.select(first.id)
    assert page.restore_button.isEnabled() and not page.accept_button.isEnabled()
    with qtbot.waitSignal(owner_window.model_loaded, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(page.restore_button, Qt.MouseButton.LeftButton)

    assert owner_window.predictor.model_version == "test-1"
    assert owner_window.node.audit.read(action="model_restored")[0].target == f"model {first.id}"


def test_a_rejected_candidate_is_never_used(qtbot, owner_window, tmp_path):
    candidate = add_candidate(owner_window, tmp_path / "candidate", "federated-v4", seed=6)
    page = open_models(qtbot, owner_window, rows=2)
    page.select(candidate)
    loads: list[object] = []
    owner_window.model_loaded.connect(lambda: loads.append(True))

    rejected = page.reject_selected()

    assert rejected and loads == []
    assert owner_window.node.models.get(candidate).status == "rejected"
    assert page.table.item(0, 1).text() == "rejected" and not page.accept_button.isEnabled()
    assert owner_window.predictor.model_version == "test-1"


def test_a_window_started_without_a_model_loads_the_active_one(qtbot, home, tmp_path, tiny_bundle_dir):
    from pneumodesk.node import NodeService

    owner = sign_in(home, OWNER[0], OWNER[2])
    node = NodeService.open(home, default_bundle=tiny_bundle_dir)
    try:
        model = node.models.add_candidate(candidate_bundle(tmp_path / "c", "federated-v9", 7), "federation", None,
                                          1, 9, {}, {})
        node.models.accept(owner, model.id)
    finally:
        node.close()

    window = MainWindow(home=home, session=owner)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.predictor is not None, timeout=LOAD_TIMEOUT_MS)

    assert window.predictor.model_version == "federated-v9"


def test_candidate_and_current_model_curves_are_drawn_from_the_same_validation_predictions(qtbot, owner_window,
                                                                                             tmp_path):
    import numpy as np

    from pneumodesk.training.acceptance import candidate_bundle as calibrated_candidate
    from pneumodesk.training.acceptance import evaluate_bundle_locally

    rng = np.random.default_rng(0)
    validation = (rng.random((24, 1, 32, 32), dtype=np.float32), np.array([0, 1] * 12))
    current = make_tiny_bundle(seed=1)
    baseline = evaluate_bundle_locally(current, validation)
    folder, metrics = calibrated_candidate(make_tiny_bundle(seed=5).state_dict, current, validation,
                                           tmp_path / "calibrated", version="federated-v4")
    model = owner_window.node.models.add_candidate(folder, "federation plan abc123", None, 4, 4, metrics, baseline)

    page = open_models(qtbot, owner_window, rows=2)
    page.select(model.id)

    rows = page.curves.roc.values.rows
    assert ("Model in use when it arrived", "ROC AUC", f"{baseline['roc_auc']:.3f}", "", "") in rows
    assert (f"Model {model.id}", "ROC AUC", f"{metrics['roc_auc']:.3f}", "", "") in rows
    marked = {row[1] for row in rows if row[0] == f"Model {model.id}"}
    assert {"operating point balanced", "operating point high-sensitivity"} <= marked
    counts = page.curves.confusion.values.rows
    assert [row[0] for row in counts] == ["Model in use when it arrived", f"Model {model.id}"]
    assert all(sum(int(n) for n in row[2:6]) == 24 for row in counts)  # every validation image, once
    assert f"{metrics['threshold']:.3f}" == counts[1][1]
    assert len(page.curves.reliability.values.rows) == 20
    assert not page.curves.note.isVisibleTo(page)


def test_a_model_without_recorded_curves_says_so(qtbot, owner_window, tmp_path):
    candidate = add_candidate(owner_window, tmp_path / "candidate", "federated-v3", seed=5)
    page = open_models(qtbot, owner_window, rows=2)
    page.select(candidate)

    assert page.curves.roc.values.rows == ()
    assert "No curves were recorded" in page.curves.note.text()
