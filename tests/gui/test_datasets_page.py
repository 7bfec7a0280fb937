"""The Datasets page: registering a labelled folder in the background shows its class counts, split and the files
that could not be read (with the reason); removal; errors in plain words; only roles with manage_datasets see it."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import Qt

from pneumodesk.gui.main_window import MainWindow
from tests.gui.conftest import LOAD_TIMEOUT_MS
from tests.node_builders import OWNER, sign_in

SCAN_TIMEOUT_MS = 60_000


@pytest.fixture
def owner_window(qtbot, make_window, home) -> MainWindow:
    return make_window(as_user=sign_in(home, OWNER[0], OWNER[2]))


def cell(table, row: int, column: int) -> str:
    return table.item(row, column).text()


def register_through_page(qtbot, page, name: str, source) -> bool:
    page.name_field.setText(name)
    page.path_field.setText(str(source))
    with qtbot.waitSignal(page.registration_finished, timeout=SCAN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(page.register_button, Qt.MouseButton.LeftButton)
    return bool(blocker.args[0])


def test_registering_a_folder_shows_counts_split_and_unreadable_files(qtbot, owner_window, labelled_folder):
    (labelled_folder / "PNEUMONIA" / "scan_notes.png").write_bytes(b"not an image")
    owner_window.show_page("Datasets")
    page = owner_window.datasets_page

    ok = register_through_page(qtbot, page, "Radiology 2024", labelled_folder)

    assert ok, page.message.text()
    assert page.table.rowCount() == 1
    counts = [cell(page.table, 0, c) for c in range(7)]
    assert counts[:4] == ["Radiology 2024", "folder", "24", "24"]
    assert int(counts[4]) + int(counts[5]) == 48 and 0 < int(counts[5]) < 24
    assert counts[6] == "1"
    top = page.unreadable.topLevelItem(0)
    assert top.childCount() == 1 and top.child(0).text(0).endswith("scan_notes.png") and top.child(0).text(1)
    assert page.progress.isHidden() and page.register_button.isEnabled()
    assert page.progress.maximum() == 49 and page.progress.value() == 49  # every file was reported as scanned
    assert "Registered Radiology 2024: 24 normal and 24 pneumonia images" in page.message.text()
    assert owner_window.node.audit.read(action="dataset_registered")[0].user == OWNER[0]


def test_a_csv_dataset_and_removal(qtbot, owner_window, labelled_folder, tmp_path):
    listing = tmp_path / "labels.csv"
    with listing.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for label in ("NORMAL", "PNEUMONIA"):
            for path in sorted((labelled_folder / label).iterdir()):
                writer.writerow([path.relative_to(tmp_path), label])
    page = owner_window.datasets_page
    owner_window.show_page("Datasets")
    assert register_through_page(qtbot, page, "From CSV", listing), page.message.text()
    page.select("From CSV")
    page.ask = lambda title, text: True

    removed = page.remove_selected()

    assert removed and page.table.rowCount() == 0
    assert "Removed From CSV" in page.message.text()
    assert labelled_folder.exists() and listing.exists()  # nothing on disk is touched


def test_a_missing_folder_is_refused_in_plain_words(qtbot, owner_window, tmp_path):
    page = owner_window.datasets_page

    ok = register_through_page(qtbot, page, "Nowhere", tmp_path / "no-such-folder")

    assert not ok
    assert page.message.text().startswith("The dataset was not registered: There is no folder or CSV file")
    assert page.table.rowCount() == 0 and page.register_button.isEnabled()


def test_the_page_is_hidden_from_a_clinician(window):
    titles = [window.sidebar.item(i).text() for i in range(window.sidebar.count())]

    assert "Datasets" not in titles and "Federation" not in titles and "Training" not in titles
    with pytest.raises(KeyError):
        window.show_page("Datasets")


def test_closing_the_window_during_a_scan_waits_for_it(qtbot, tiny_bundle_dir, home, labelled_folder):
    window = MainWindow(home=home, bundle=tiny_bundle_dir, session=sign_in(home, OWNER[0], OWNER[2]))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.predictor is not None, timeout=LOAD_TIMEOUT_MS)
    page = window.datasets_page
    page.name_field.setText("Closing")
    page.path_field.setText(str(labelled_folder))
    assert page.register()

    window.close()

    assert not page.calls.busy
