"""Keyboard shortcuts act on the worklist and the viewer; the viewer's window/level, overlay and transforms work."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QKeySequence

from pneumodesk.gui.dialogs.help import ShortcutsDialog
from pneumodesk.gui.shortcuts import COMMANDS
from pneumodesk.gui.widgets.viewer import ImageCanvas
from pneumodesk.model.default import samples_path
from tests.gui.conftest import noise, run_batch


def press(qtbot, window, key: str) -> None:
    """Type a shortcut as a reader would, into the focused worklist."""
    sequence = QKeySequence(key)[0]
    qtbot.keyClick(window.predict_page.table, sequence.key(), sequence.keyboardModifiers())


def shown_window(qtbot, window):
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.predict_page.table.setFocus()
    run_batch(qtbot, window, [samples_path()])
    page = window.predict_page
    page.select_proxy_row(0)
    qtbot.waitUntil(lambda: page.shown is not None and page.shown[0] == page.current_row(), timeout=60_000)
    return page


def test_next_previous_and_verdict_shortcuts(qtbot, window):
    page = shown_window(qtbot, window)
    first = page.current_row()

    press(qtbot, window, "J")
    second = page.current_row()
    press(qtbot, window, "A")
    press(qtbot, window, "K")
    press(qtbot, window, "D")

    assert page.table.currentIndex().row() == 0 and page.current_row() == first != second
    assert page.model.entry(second).verdict == "agree"
    assert page.model.entry(first).verdict == "disagree"
    assert window.verdicts.get(page.model.entry(first).sha256) == "disagree"
    assert page.viewer.disagree.isChecked() and not page.viewer.agree.isChecked()


def test_viewer_shortcuts_toggle_overlay_zoom_invert_rotate_and_reset(qtbot, window):
    page = shown_window(qtbot, window)
    canvas = page.viewer.canvas

    press(qtbot, window, "H")
    press(qtbot, window, "+")
    press(qtbot, window, "I")
    press(qtbot, window, "R")
    press(qtbot, window, "X")
    state = (canvas.overlay_visible, canvas.zoom, canvas.inverted, canvas.rotation, canvas.flip_h)
    press(qtbot, window, "0")
    press(qtbot, window, "-")

    assert state == (True, 1.25, True, 90, True)
    assert page.viewer.overlay.isChecked()
    assert (canvas.inverted, canvas.rotation, canvas.flip_h, canvas.zoom) == (False, 0, False, 0.8)


def test_filter_shortcuts_and_help_dialog(qtbot, window):
    page = shown_window(qtbot, window)

    press(qtbot, window, "Alt+3")
    errors_only = page.proxy.rowCount()
    press(qtbot, window, "Alt+1")
    press(qtbot, window, "F1")

    assert errors_only == 0 and page.proxy.rowCount() == 8
    dialog = next(d for d in window.dialogs if isinstance(d, ShortcutsDialog))
    listed = {dialog.table.item(r, 1).text(): dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    assert len(listed) == len(COMMANDS)
    assert listed["Next image"].startswith("J") and listed["Agree with the model"] == "A"
    assert listed["Show or hide the heat map"] == "H"
    for command in COMMANDS:  # every listed key is bound to its action
        bound = [s.toString() for s in window.actions_by_id[command.id].shortcuts()]
        assert bound == [QKeySequence(k).toString() for k in command.keys]


def test_right_drag_sets_window_and_level_and_changes_the_picture(qtbot):
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 400)
    canvas.show()
    canvas.set_image(noise(1))
    before = canvas.grab().toImage()

    qtbot.mousePress(canvas, Qt.MouseButton.RightButton, pos=QPoint(200, 200))
    qtbot.mouseMove(canvas, QPoint(140, 140))
    qtbot.mouseRelease(canvas, Qt.MouseButton.RightButton, pos=QPoint(140, 140))

    assert canvas.width_ < 1.0 and canvas.level > 0.5
    assert canvas.grab().toImage() != before
    canvas.reset_view()
    assert (canvas.level, canvas.width_) == (0.5, 1.0)


def test_left_drag_pans_and_the_heat_map_overlay_shows(qtbot):
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(400, 400)
    canvas.show()
    heat = np.zeros((64, 64), dtype=np.float32)
    heat[20:40, 20:40] = 1.0
    canvas.set_image(np.full((64, 64), 0.5, dtype=np.float32), heat)
    plain = canvas.grab().toImage()

    canvas.set_overlay(True)
    overlaid = canvas.grab().toImage()
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    qtbot.mouseMove(canvas, QPoint(230, 210))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(230, 210))

    centre = overlaid.pixelColor(overlaid.width() // 2, overlaid.height() // 2)
    grey = plain.pixelColor(plain.width() // 2, plain.height() // 2)
    assert grey.red() == grey.green() == grey.blue()
    assert centre.red() > centre.blue() + 40  # high influence is drawn red over the grey image
    assert (canvas.pan.x(), canvas.pan.y()) == (30, 10)


def test_viewer_shows_the_facts_beside_the_image_and_errors_in_words(qtbot, window, xray_folder):
    run_batch(qtbot, window, [xray_folder])
    page = window.predict_page
    page.select_proxy_row(0)
    qtbot.waitUntil(lambda: page.shown is not None and page.shown[0] == page.current_row(), timeout=60_000)
    item = page.model.entry(page.current_row())
    panel = page.viewer

    facts = (panel.position.text(), panel.probability.text(), panel.decision.text(), panel.model_version.text())
    threshold = panel.threshold.text()
    page.select_proxy_row(5)  # unpredicted rows sort last: an error row

    assert facts == ("Image 1 of 6", f"{item.prediction.probability * 100:.1f} %",
                     item.prediction.label, "Model version test-1")
    assert "balanced" in threshold and "50.0 %" in threshold
    assert page.shown is None and not page.viewer.canvas.has_image
    assert panel.error.text() == page.model.entry(page.current_row()).error != ""
    assert panel.probability.text() == "—" and not panel.agree.isEnabled()
