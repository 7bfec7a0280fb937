"""Charts draw the figures they are given: the data behind each picture (its text alternative) is checked, not
pixels; the histogram picks a bin when a bar is clicked."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from pneumodesk.gui.charts import (
    BarChart,
    ConfusionMatrixView,
    HistogramChart,
    LineChart,
    LineSeries,
    ReliabilityChart,
    RocChart,
)
from pneumodesk.gui.charts.lines import ReferenceLine
from pneumodesk.inference.histogram import probability_histogram
from pneumodesk.model.curves import model_curves

LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
CURRENT = model_curves(LABELS, np.array([0.05, 0.15, 0.35, 0.62, 0.45, 0.71, 0.85, 0.95]), {"balanced": 0.62},
                       "balanced")
CANDIDATE = model_curves(LABELS, np.array([0.05, 0.15, 0.25, 0.35, 0.55, 0.71, 0.85, 0.95]), {"balanced": 0.5},
                         "balanced")


def test_roc_chart_lists_each_models_auc_and_operating_point(qtbot) -> None:
    chart = RocChart()
    qtbot.addWidget(chart)

    chart.set_curves([("Current model", CURRENT), ("Candidate", CANDIDATE)])

    rows = chart.values.rows
    assert ("Current model", "ROC AUC", "0.938", "", "") in rows
    assert ("Candidate", "ROC AUC", "1.000", "", "") in rows
    assert ("Current model", "operating point balanced", "0.620", "0.750", "0.750") in rows
    assert ("Candidate", "operating point balanced", "0.500", "1.000", "1.000") in rows
    assert "Candidate" in chart.plot.accessibleDescription()


def test_reliability_chart_lists_every_bin_of_every_model(qtbot) -> None:
    chart = ReliabilityChart()
    qtbot.addWidget(chart)

    chart.set_curves([("Current model", CURRENT)])

    rows = chart.values.rows
    assert len(rows) == 10
    assert rows[0] == ("Current model", "0.0–0.1", "1", "0.050", "0.000")
    assert rows[1][2] == "1" and rows[2] == ("Current model", "0.2–0.3", "0", "—", "—")


def test_the_values_button_shows_the_same_numbers_as_a_table(qtbot) -> None:
    chart = RocChart()
    qtbot.addWidget(chart)
    chart.set_curves([("Current model", CURRENT)])

    chart.table_button.click()

    assert chart.stack.currentWidget() is chart.table
    assert chart.table.rowCount() == len(chart.values.rows)
    assert chart.table.item(0, 2).text() == "0.938"


def test_confusion_matrices_show_the_counts_at_each_models_threshold(qtbot) -> None:
    view = ConfusionMatrixView()
    qtbot.addWidget(view)

    view.set_counts([("Current model", CURRENT.confusion), ("Candidate", CANDIDATE.confusion)])

    assert view.values.rows == (
        ("Current model", "0.620", "3", "1", "1", "3", "0.750", "0.750"),
        ("Candidate", "0.500", "4", "0", "0", "4", "1.000", "1.000"),
    )


def test_line_and_bar_charts_list_their_points_and_reference_lines(qtbot) -> None:
    line = LineChart("AUC per round", "round", "ROC AUC")
    bars = BarChart("Bytes sent per round", "round", "bytes sent")
    qtbot.addWidget(line)
    qtbot.addWidget(bars)

    line.set_series([LineSeries("this hospital", (1.0, 2.0), (0.81, 0.875))], [ReferenceLine("cap", 0.9)])
    bars.set_bars(["1", "2"], [1200, 34000])

    assert line.values.rows == (("this hospital", "1", "0.810"), ("this hospital", "2", "0.875"), ("cap", "", "0.900"))
    assert bars.values.rows == (("1", "1,200"), ("2", "34,000"))


def test_clicking_a_bar_selects_its_bin_and_clicking_again_clears_it(qtbot) -> None:
    chart = HistogramChart()
    qtbot.addWidget(chart)
    chart.resize(500, 260)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_histogram(probability_histogram([0.05, 0.72, 0.75, 0.78, 0.9], threshold=0.5))
    assert ("operating point threshold", "0.500", "") in chart.values.rows

    where = chart.scene_position(0.75, 1.0).toPoint()
    with qtbot.waitSignal(chart.bin_selected) as picked:
        qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert picked.args == [7]
    assert chart.values.rows[7] == ("0.7–0.8", "3", "yes")

    with qtbot.waitSignal(chart.bin_selected) as cleared:
        qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert cleared.args == [-1]


def test_a_chart_follows_the_theme(qtbot) -> None:
    from PySide6.QtWidgets import QApplication

    from pneumodesk.gui.theme import apply_theme, colours

    app = QApplication.instance()
    previous = app.property("pneumodesk_theme") or "dark"
    chart = RocChart()
    qtbot.addWidget(chart)
    chart.set_curves([("Current model", CURRENT)])
    try:
        apply_theme(app, "light")
        qtbot.waitUntil(lambda: chart.plot.backgroundBrush().color().name() == colours("light").base)
        apply_theme(app, "dark")
        qtbot.waitUntil(lambda: chart.plot.backgroundBrush().color().name() == colours("dark").base)
        assert chart.values.rows[0] == ("Current model", "ROC AUC", "0.938", "", "")  # redrawn, same figures
    finally:
        apply_theme(app, str(previous))


def test_a_bin_can_be_chosen_from_the_keyboard_in_the_values_table(qtbot) -> None:
    chart = HistogramChart()
    qtbot.addWidget(chart)
    chart.set_histogram(probability_histogram([0.05, 0.72, 0.75], threshold=0.5))
    chart.table_button.click()
    chart.show()
    qtbot.waitExposed(chart)
    chart.table.setFocus()
    chart.table.setCurrentCell(7, 0)

    with qtbot.waitSignal(chart.bin_selected) as picked:
        qtbot.keyClick(chart.table, Qt.Key.Key_Return)

    assert picked.args == [7]
