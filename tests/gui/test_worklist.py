"""The worklist: batches fill it, it sorts and filters, bad files show their error, Cancel and close stop a batch."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from pneumodesk.gui.widgets.worklist_model import Column, FilterMode, Status
from pneumodesk.inference import Prediction
from pneumodesk.model.default import samples_path
from tests.gui.conftest import BAD_NAMES, BATCH_TIMEOUT_MS, GOOD_NAMES, many_copies, run_batch


def shown_column(page, column: Column) -> list[str]:
    return [page.proxy.index(r, column).data() for r in range(page.proxy.rowCount())]


def test_loading_the_samples_fills_the_worklist_sorted_by_probability(qtbot, window):
    page = window.predict_page

    cancelled = run_batch(qtbot, window, [samples_path()])

    items = page.visible_items()
    assert not cancelled and len(items) == 8
    assert all(item.status is Status.DONE and item.prediction is not None for item in items)
    probabilities = [item.prediction.probability for item in items]
    assert probabilities == sorted(probabilities, reverse=True)
    threshold = window.predictor.operating_point.threshold
    for item in items:
        assert item.prediction.is_pneumonia == (item.prediction.probability >= threshold)
    assert shown_column(page, Column.STATUS) == ["done"] * 8
    assert shown_column(page, Column.PROBABILITY)[0] == f"{probabilities[0] * 100:.1f} %"
    assert "8 images · 8 predicted" in page.summary.text()


def test_a_folder_is_searched_recursively_and_bad_files_show_their_error(qtbot, window, xray_folder):
    page = window.predict_page

    run_batch(qtbot, window, [xray_folder])

    by_name = {item.name: item for item in page.model.entries()}
    assert set(by_name) == GOOD_NAMES | BAD_NAMES
    for name in GOOD_NAMES:
        assert by_name[name].status is Status.DONE and by_name[name].prediction is not None
    assert "not an image PneumoDesk can read" in by_name["broken.png"].error
    assert by_name["empty.jpg"].error == "The file is empty (0 bytes)."
    bad_rows = [r for r in range(page.proxy.rowCount()) if page.proxy.index(r, Column.FILE).data() in BAD_NAMES]
    for row in bad_rows:
        assert page.proxy.index(row, Column.STATUS).data() == "error"
        assert page.proxy.index(row, Column.DECISION).data().startswith("The file")
    assert bad_rows == [4, 5]  # unpredicted rows sort after every result


def test_sorting_by_a_column_and_filtering_positives_and_errors(qtbot, window, xray_folder):
    page = window.predict_page
    run_batch(qtbot, window, [xray_folder, samples_path()])

    page.table.sortByColumn(Column.FILE, Qt.SortOrder.AscendingOrder)
    names = shown_column(page, Column.FILE)
    assert names == sorted(names, key=str.lower)

    window.set_filter(FilterMode.ERRORS)
    assert set(shown_column(page, Column.FILE)) == BAD_NAMES

    window.set_filter(FilterMode.POSITIVES)
    positives = {item.name for item in page.model.entries() if item.prediction and item.prediction.is_pneumonia}
    assert set(shown_column(page, Column.FILE)) == positives
    assert set(shown_column(page, Column.DECISION)) <= {"Pneumonia"}

    window.set_filter(FilterMode.ALL)
    assert page.proxy.rowCount() == 14


def test_positive_filter_and_probability_order_on_known_predictions(qtbot):
    """Model and proxy alone, with predictions whose decisions are known."""
    from pneumodesk.gui.widgets.worklist_model import WorklistFilter, WorklistModel

    model = WorklistModel()
    proxy = WorklistFilter(model)
    rows = model.add_paths([Path(f"{name}.png") for name in ("low", "high", "broken", "mid")])
    for row, p in zip(rows, (0.1, 0.9, None, 0.6), strict=True):
        prediction = Prediction(p, "PNEUMONIA" if p >= 0.5 else "NORMAL", "balanced", 0.5, "v1") if p else None
        model.set_result(row, prediction, None if p else "damaged", "sha" if p else None, None)

    order = [proxy.index(r, Column.FILE).data() for r in range(proxy.rowCount())]
    proxy.set_mode(FilterMode.POSITIVES)
    positives = [proxy.index(r, Column.FILE).data() for r in range(proxy.rowCount())]

    assert order == ["high.png", "mid.png", "low.png", "broken.png"]
    assert positives == ["high.png", "mid.png"]


def test_cancel_stops_a_batch_and_keeps_finished_results(qtbot, window, tmp_path):
    page = window.predict_page
    paths = many_copies(tmp_path / "many", 1000)

    with qtbot.waitSignal(page.batch_finished, timeout=BATCH_TIMEOUT_MS) as finished:
        page.add_paths(paths)
        qtbot.waitUntil(lambda: any(item.status is Status.DONE for item in page.model.entries()), timeout=60_000)
        assert page.cancel_button.isVisible()
        qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)

    statuses = [item.status for item in page.model.entries()]
    assert finished.args == [True]
    assert Status.DONE in statuses and Status.CANCELLED in statuses
    assert statuses.count(Status.DONE) < len(paths)
    assert not {Status.QUEUED, Status.RUNNING} & set(statuses)
    assert all(item.prediction is None for item in page.model.entries() if item.status is Status.CANCELLED)
    assert not page.batch_running and not page.cancel_button.isVisible()


def test_closing_the_window_during_a_batch_stops_cleanly(qtbot, make_window, tmp_path, home):
    window = make_window()
    page = window.predict_page
    paths = many_copies(tmp_path / "many", 1000)
    page.add_paths(paths)
    qtbot.waitUntil(lambda: any(item.status is Status.DONE for item in page.model.entries()), timeout=60_000)
    page.select_proxy_row(0)
    page.set_verdict("agree")
    thread = page._batch_thread
    assert thread is not None and thread.isRunning()

    window.close()

    assert thread.isFinished()
    assert (home / "verdicts.json").read_text().count("agree") == 1


def test_dropping_files_and_folders_queues_them(qtbot, window, xray_folder):
    page = window.predict_page
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(xray_folder / name)) for name in ("a_chest.png", "nested")])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)

    with qtbot.waitSignal(page.batch_finished, timeout=BATCH_TIMEOUT_MS):
        page.dropEvent(event)

    assert {item.name for item in page.model.entries()} == {"a_chest.png", "c_chest.jpg", "d_chest.dcm"}
    assert all(item.status is Status.DONE for item in page.model.entries())


def test_changing_the_operating_point_redecides_every_row(qtbot, window):
    page = window.predict_page
    run_batch(qtbot, window, [samples_path()])
    combo = window.settings_page.operating_point

    combo.setCurrentIndex(combo.findData("high-sensitivity"))

    assert all(item.prediction.threshold == 0.3 for item in page.model.entries())
    assert all(item.prediction.is_pneumonia == (item.prediction.probability >= 0.3) for item in page.model.entries())
    assert "high-sensitivity" in window.operating_point_label.text()
    assert window.settings.operating_point == "high-sensitivity"


def test_files_opened_while_the_model_loads_are_predicted_once_it_is_ready(qtbot, tiny_bundle_dir, home, session):
    from pneumodesk.gui.main_window import MainWindow

    window = MainWindow(home=home, bundle=tiny_bundle_dir, session=session)
    qtbot.addWidget(window)
    page = window.predict_page
    assert window.predictor is None

    with qtbot.waitSignal(page.batch_finished, timeout=BATCH_TIMEOUT_MS):
        page.add_paths([samples_path()])
        assert "waiting for the model" in page.summary.text()

    assert [item.status for item in page.model.entries()] == [Status.DONE] * 8
