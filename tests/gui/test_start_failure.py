"""A node store that cannot be opened stops the app's start with the store error's plain message in a dialog; no
main window is left behind and the run returns 1."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from pneumodesk.gui.app import START_FAILURE_TITLE, run_gui
from pneumodesk.gui.main_window import MainWindow
from pneumodesk.node.store import STORE_FILE


def test_a_damaged_node_store_stops_the_start_with_its_plain_message(qtbot, tmp_path):
    store = tmp_path / STORE_FILE
    store.write_bytes(b"not a database at all " * 200)
    before = store.read_bytes()
    shown: list[tuple[str, str]] = []

    def answer_the_dialog() -> None:
        boxes = [w for w in QApplication.topLevelWidgets()
                 if isinstance(w, QMessageBox) and w.objectName() == "start_failure" and w.isVisible()]
        if not boxes:
            QTimer.singleShot(20, answer_the_dialog)
            return
        shown.append((boxes[0].windowTitle(), boxes[0].text()))
        boxes[0].done(0)

    QTimer.singleShot(0, answer_the_dialog)
    status = run_gui(home=tmp_path)

    assert status == 1
    assert shown == [(START_FAILURE_TITLE, shown[0][1])]
    assert f"The node store at {store} is damaged" in shown[0][1] and "restore it from a backup" in shown[0][1]
    assert not any(isinstance(w, MainWindow) and w.isVisible() for w in QApplication.topLevelWidgets())
    assert store.read_bytes() == before
