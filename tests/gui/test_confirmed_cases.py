"""Clinicians' readings → a Confirmed cases dataset → local recalibration accepted on the Models page → predictions
use the new thresholds; the drift warning when confirmed cases disagree with the model; a changed image refused
with its reason."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from pneumodesk.gui.main_window import MainWindow
from pneumodesk.model import load_bundle
from pneumodesk.node.model_registry import RECALIBRATION_SOURCE
from pneumodesk.node.readings import Reading
from pneumodesk.training.recalibration import MIN_CASES_PER_CLASS
from tests.builders import chest_like, write_png
from tests.gui.conftest import LOAD_TIMEOUT_MS, run_batch
from tests.node_builders import CLINICIAN, OWNER, sign_in


def ward(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True)
    return [write_png(folder / f"scan_{index:02d}.png", chest_like(64, 64, seed=100 + index)) for index in range(count)]


def read_worklist(qtbot, window: MainWindow, paths: list[Path], choose) -> None:
    """Disagree with (D) and record a reading (N / P / U) on every image, by keyboard action, as a clinician."""
    run_batch(qtbot, window, paths)
    page = window.predict_page
    keys = {Reading.NORMAL: "reading_normal", Reading.PNEUMONIA: "reading_pneumonia", Reading.UNSURE: "reading_unsure"}
    for proxy_row in range(page.proxy.rowCount()):
        page.select_proxy_row(proxy_row)
        item = page.model.entry(page.current_row())
        window.actions_by_id["reading_normal"].trigger()  # refused before a verdict: nothing is kept
        assert window.node.readings.get(item.sha256) is None and "Agree or disagree first" in page.summary.text()
        window.actions_by_id["disagree"].trigger()
        assert "What did you read?" in page.viewer.reading.text()
        reading = choose(item)
        window.actions_by_id[keys[reading]].trigger()
        assert page.viewer.reading.text().startswith(f"Your reading: {reading.value}")


def confirm_more(window: MainWindow, home: Path, folder: Path, per_class: int) -> list[Path]:
    """``per_class`` more normal and pneumonia readings, recorded straight in the node store (the keyboard flow is
    the one above), to reach the recalibration floor."""
    clinician = sign_in(home, CLINICIAN[0], CLINICIAN[2])
    folder.mkdir(parents=True)
    paths = [write_png(folder / f"more_{index:02d}.png", chest_like(64, 64, seed=500 + index))
             for index in range(2 * per_class)]  # other images than ``ward``'s: a reading is kept per content digest
    for index, path in enumerate(paths):
        window.node.readings.record(clinician, hashlib.sha256(path.read_bytes()).hexdigest(), path,
                                    Reading.PNEUMONIA if index % 2 else Reading.NORMAL)
    return paths


def by_index(item) -> Reading:
    index = int(item.path.stem.split("_")[1])
    return Reading.UNSURE if index == 0 else (Reading.PNEUMONIA if index % 2 else Reading.NORMAL)


def owner_window(make_window, home) -> MainWindow:
    return make_window(as_user=sign_in(home, OWNER[0], OWNER[2]))


def register_confirmed(qtbot, window: MainWindow):
    window.show_page("Datasets")
    page = window.datasets_page
    page.refresh()
    with qtbot.waitSignal(page.registration_finished, timeout=LOAD_TIMEOUT_MS) as blocker:
        assert page.register_confirmed()
    assert blocker.args == [True], page.message.text()
    return page


def test_readings_become_a_dataset_recalibration_is_accepted_and_predictions_use_it(
        qtbot, make_window, home, tmp_path):
    paths = ward(tmp_path / "ward", 13)  # image 0: unsure; then 6 pneumonia, 6 normal
    clinician = make_window()
    read_worklist(qtbot, clinician, paths, by_index)
    clinician.close()

    window = owner_window(make_window, home)
    datasets = register_confirmed(qtbot, window)
    assert "6 normal, 6 pneumonia (and 1 unsure" in datasets.confirmed_counts.text()
    row = [datasets.table.item(0, c).text() for c in range(7)]
    assert row[1:4] == ["confirmed cases", "6", "6"] and int(row[4]) + int(row[5]) == 12 and row[6] == "0"

    window.show_page("Models")
    models = window.models_page
    models.refresh()
    qtbot.waitUntil(lambda: not models.calls.busy, timeout=LOAD_TIMEOUT_MS)
    with qtbot.waitSignal(models.recalibration_finished, timeout=LOAD_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(models.recalibrate_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [False]  # 6 and 6: thresholds fitted on them would follow chance
    assert models.message.text() == (
        "Not recalibrated: Recalibration needs at least 20 confirmed normal and 20 confirmed pneumonia cases; this "
        "workstation has 6 and 6. Thresholds fitted on fewer would follow chance.")
    assert [m.source for m in window.node.models.list()] == ["bundled default"]

    more = confirm_more(window, home, tmp_path / "more", MIN_CASES_PER_CLASS - 6)
    window.node.confirmed_cases.register(window.session, "Confirmed cases (all)")
    with qtbot.waitSignal(models.recalibration_finished, timeout=LOAD_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(models.recalibrate_button, Qt.MouseButton.LeftButton)
    assert blocker.args == [True], models.message.text()
    assert models.message.text().startswith(f"Recalibrated on {12 + len(more)} confirmed case(s).")
    candidate = models.selected()
    assert candidate is not None and candidate.source == RECALIBRATION_SOURCE
    shown = {models.figures.item(r, 0).text(): models.figures.item(r, 2).text()
             for r in range(models.figures.rowCount())}
    assert shown["Decision threshold"] == "0.500"  # before: the tiny card's balanced threshold, beside the new one
    assert "confirmed cases" in models.figures_title.text()
    drawn = dict(models.curves.shown)  # before and after drawn overlaid, from the figures the candidate carries
    assert list(drawn) == ["Before recalibration", f"Model {candidate.id} (after)"]
    assert drawn[f"Model {candidate.id} (after)"].confusion.threshold == pytest.approx(candidate.metrics["threshold"],
                                                                                 abs=1e-4)
    assert drawn["Before recalibration"].confusion.threshold == 0.5
    assert {row[0] for row in models.curves.roc.values.rows} == set(drawn)
    new_card = load_bundle(candidate.bundle_dir).card

    with qtbot.waitSignal(window.model_loaded, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(models.accept_button, Qt.MouseButton.LeftButton)
    predictor = window.predictor
    assert predictor.model_version == candidate.model_version
    expected = new_card.operating_points[predictor.operating_point_name].threshold
    assert predictor.operating_point.threshold == expected
    image = write_png(tmp_path / "new.png", chest_like(64, 64, seed=7))
    run_batch(qtbot, window, [image])
    entries = [e for e in window.predict_page.model.entries() if e.path == image]
    assert entries[0].prediction.threshold == expected
    actions = [e.action for e in window.node.audit.read()]
    assert {"reading_recorded", "dataset_registered", "recalibration_accepted"} <= set(actions)


def test_a_drift_warning_appears_when_confirmed_cases_disagree_with_the_model(qtbot, make_window, home, tmp_path):
    paths = ward(tmp_path / "ward", 12)
    clinician = make_window()
    read_worklist(qtbot, clinician, paths,
                  lambda item: Reading.NORMAL if item.prediction.is_pneumonia else Reading.PNEUMONIA)
    clinician.close()

    window = owner_window(make_window, home)
    window.show_page("Models")
    models = window.models_page
    with qtbot.waitSignal(models.drift_warning, timeout=LOAD_TIMEOUT_MS) as blocker:
        models.refresh()
    assert blocker.args[0].startswith("Warning: the model in use does worse")
    assert "Wilson interval" in models.monitoring.text() and models.performance is not None
    assert models.performance.drifted
    assert window.statusBar().currentMessage() == blocker.args[0]


def test_a_changed_image_file_is_refused_with_its_reason(qtbot, make_window, home, tmp_path):
    paths = ward(tmp_path / "ward", 9)
    clinician = make_window()
    read_worklist(qtbot, clinician, paths, by_index)
    clinician.close()
    write_png(paths[3], chest_like(64, 64, seed=999))  # same name, other pixels

    window = owner_window(make_window, home)
    page = register_confirmed(qtbot, window)
    top = page.unreadable.topLevelItem(0)
    assert top is not None and "1 file(s) left out" in top.text(0)
    assert top.child(0).text(0) == paths[3].resolve().as_posix()
    assert top.child(0).text(1) == "The file changed since it was read (its content digest differs)."
    assert "1 file(s) could not be read" in page.message.text()
