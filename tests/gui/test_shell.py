"""The shell: pages, status bar, persisted settings and theme, first-start notice, model card, model errors."""

from __future__ import annotations

import subprocess
import sys

from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

from pneumodesk.gui.dialogs.help import ModelCardDialog
from pneumodesk.gui.main_window import OFFLINE_NOTE, MainWindow
from pneumodesk.gui.settings import Settings
from pneumodesk.model import ModelBundle
from tests.builders import make_tiny_bundle

CITATION = "Kermany DS et al. Identifying Medical Diagnoses. Cell 2018."


def test_sidebar_pages_and_status_bar(window):
    pages = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]
    status = [w.text() for w in (window.model_label, window.operating_point_label)]

    assert pages == ["Predict", "PACS", "Settings"]
    assert status == ["Model: test model · version test-1", "Operating point: balanced (threshold 50.0 %)"]
    assert any(label.text() == OFFLINE_NOTE for label in window.statusBar().findChildren(type(window.model_label)))
    window.show_page("Settings")
    assert window.pages.currentWidget() is window.settings_page


def test_theme_opacity_and_operating_point_persist(qtbot, make_window, home):
    window = make_window()
    dark_window_colour = QApplication.palette().color(QPalette.ColorRole.Window).lightness()
    page = window.settings_page

    page.theme.setCurrentIndex(page.theme.findData("light"))
    page.opacity.setValue(70)
    page.operating_point.setCurrentIndex(page.operating_point.findData("high-sensitivity"))
    light_window_colour = QApplication.palette().color(QPalette.ColorRole.Window).lightness()
    window.close()
    settings = Settings(home)
    again = make_window()

    assert dark_window_colour < 60 < 200 < light_window_colour
    assert (settings.theme, settings.heatmap_opacity, settings.operating_point) == ("light", 0.7, "high-sensitivity")
    assert again.predictor.operating_point_name == "high-sensitivity"
    assert again.predict_page.viewer.opacity.value() == 70
    assert again.settings_page.theme.currentData() == "light"
    again.settings_page.theme.setCurrentIndex(0)  # leave the shared application dark for later tests


def test_last_folder_is_remembered(home):
    Settings(home).last_folder = "/data/xrays"
    assert Settings(home).last_folder == "/data/xrays"


def test_intended_use_notice_shows_on_first_start_only(qtbot, make_window):
    window = make_window()
    notice = window.show_first_start_notice()
    assert notice is not None and notice.isVisible()

    notice.accept()
    window.close()
    again = make_window()

    assert again.settings.intended_use_acknowledged
    assert again.show_first_start_notice() is None


def test_model_card_dialog_shows_use_limits_validation_and_citation(qtbot, make_window, tmp_path):
    tiny = make_tiny_bundle()
    card = tiny.card.with_updates(training={"data": "synthetic", "citation": [CITATION]})
    bundle_dir = ModelBundle(card, tiny.state_dict).save(tmp_path / "bundle")
    window = make_window(bundle=bundle_dir)

    dialog = window.show_model_card()

    assert isinstance(dialog, ModelCardDialog) and dialog.isVisible()
    text = dialog.text.toPlainText()
    for expected in ("Intended use", "tests only", "Limitations", "random weights", "roc auc", "0.400–0.600",
                     "Data citation", CITATION, "high-sensitivity", "0.300"):
        assert expected in text


def test_a_broken_model_bundle_is_reported_in_plain_words(qtbot, tmp_path, home):
    (tmp_path / "empty_bundle").mkdir()
    window = MainWindow(home=home, bundle=tmp_path / "empty_bundle")
    qtbot.addWidget(window)

    with qtbot.waitSignal(window.model_failed, timeout=60_000) as failed:
        pass

    assert "incomplete" in failed.args[0] and "model_card.json is missing" in failed.args[0]
    assert window.model_label.text() == "Model: not loaded"
    assert window.show_model_card() is None


def test_cli_module_and_core_packages_do_not_import_qt():
    code = (
        "import sys, pneumodesk.cli, pneumodesk.inference, pneumodesk.imaging, pneumodesk.model; "
        "print(sorted(m for m in sys.modules if m.startswith('PySide6')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"



def test_model_card_dialog_draws_the_curves_the_card_records(qtbot):
    import numpy as np

    from pneumodesk.model.curves import model_curves
    from tests.builders import make_tiny_bundle

    labels = np.array([0, 0, 0, 1, 1, 1])
    curves = model_curves(labels, np.array([0.1, 0.3, 0.6, 0.4, 0.7, 0.9]), {"balanced": 0.5}, "balanced")
    card = make_tiny_bundle().card
    with_curves = card.with_updates(validation={**card.validation, "curves": curves.to_json_dict()})

    plain, drawn = ModelCardDialog(card), ModelCardDialog(with_curves)
    qtbot.addWidget(plain)
    qtbot.addWidget(drawn)

    assert plain.curves is None
    assert drawn.curves is not None
    assert ("Version test-1", "ROC AUC", f"{curves.roc.auc:.3f}", "", "") in drawn.curves.roc.values.rows
    assert drawn.curves.confusion.values.rows[0][2:6] == ("2", "1", "1", "2")
    assert "curves" not in drawn.text.toPlainText()  # drawn, not dumped as text
