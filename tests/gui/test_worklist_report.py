"""The worklist report (PDF): every image of the worklist as shown, one line each with a thumbnail, over as many
pages as it needs; audited as an export; an image file gone since prediction gets an empty box and says so.

It is written by a worker thread, with progress and Cancel: the window keeps answering while the thumbnails are
read, and a cancelled report leaves no file."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pypdf import PdfReader
from PySide6.QtCore import Qt

from pneumodesk.gui.worklist_report import thumbnail
from tests.builders import chest_like, write_png
from tests.gui.conftest import LOAD_TIMEOUT_MS, run_batch


class GatedThumbnails:
    """Reads thumbnails like the app does, but holds the first one until the test opens the gate; records which
    threads read them."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.threads: set[int] = set()

    def __call__(self, path: Path):
        self.threads.add(threading.get_ident())
        self.entered.set()
        self.gate.wait(timeout=60)
        return thumbnail(path)


def worklist(qtbot, window, tmp_path: Path, count: int) -> list[Path]:
    paths = [write_png(tmp_path / f"chest_{i:02d}.png", chest_like(72, 72, seed=i)) for i in range(count)]
    run_batch(qtbot, window, paths)
    return paths


def test_the_worklist_report_lists_every_image_with_a_thumbnail_across_pages(qtbot, window, tmp_path):
    paths = worklist(qtbot, window, tmp_path, 14)
    page = window.predict_page
    page.set_verdict("agree")
    paths[5].unlink()  # gone since it was predicted
    target = tmp_path / "out.pdf"

    with qtbot.waitSignal(page.report_written, timeout=LOAD_TIMEOUT_MS) as written:
        assert page.start_worklist_report(target)

    assert written.args == [target]
    reader = PdfReader(target)
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    shown = page.visible_items()
    assert len(reader.pages) == 2  # 14 lines do not fit on one A4 page
    assert "14 image(s)" in text and "model test model test-1" in text
    for position, item in enumerate(shown, start=1):
        assert f"{position}. {item.name}" in text
        assert f"{item.prediction.probability * 100:.1f} %" in text
    assert "chest_05.png (image no longer readable)" in text
    assert "agree" in text
    assert sum(len(p.images) for p in reader.pages) == 13  # a thumbnail for every image still readable
    assert str(tmp_path) not in text
    audit = window.node.audit.read(action="export")[0]
    assert audit.target == "worklist_pdf" and audit.details == {"count": 14}
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(
        [p.name for p in paths if p.exists()] + ["out.pdf"])  # no temporary file left beside it


def test_the_report_is_built_by_a_worker_while_the_window_keeps_answering(qtbot, window, tmp_path):
    worklist(qtbot, window, tmp_path, 6)
    page = window.predict_page
    gated = GatedThumbnails()
    target = tmp_path / "out.pdf"
    progress: list[tuple[int, int]] = []
    page.report_progress.connect(lambda done, total: progress.append((done, total)))

    assert page.start_worklist_report(target, read_thumbnail=gated)
    qtbot.waitUntil(gated.entered.is_set, timeout=LOAD_TIMEOUT_MS)
    # The first thumbnail is held in the worker: the GUI thread still takes a verdict, selects rows and shows the
    # report's progress and Cancel button; no second report starts meanwhile.
    assert page.report_running and page.cancel_report_button.isVisible() and page.report_bar.isVisible()
    page.select_proxy_row(2)
    page.set_verdict("disagree")
    assert page.model.entry(page.current_row()).verdict == "disagree"
    assert not page.start_worklist_report(tmp_path / "second.pdf")
    assert not target.exists()

    with qtbot.waitSignal(page.report_written, timeout=LOAD_TIMEOUT_MS):
        gated.gate.set()

    assert threading.get_ident() not in gated.threads and len(gated.threads) == 1
    assert progress == [(done, 6) for done in range(1, 7)]
    assert len(PdfReader(target).pages) == 1
    assert not page.report_running and not page.cancel_report_button.isVisible()
    assert not (tmp_path / "second.pdf").exists()


def test_a_cancelled_report_writes_no_file_and_says_so(qtbot, window, tmp_path):
    worklist(qtbot, window, tmp_path, 5)
    page = window.predict_page
    gated = GatedThumbnails()
    target = tmp_path / "out.pdf"
    before = sorted(tmp_path.iterdir())

    assert page.start_worklist_report(target, read_thumbnail=gated)
    qtbot.waitUntil(gated.entered.is_set, timeout=LOAD_TIMEOUT_MS)
    with qtbot.waitSignal(page.report_failed, timeout=LOAD_TIMEOUT_MS) as failed:
        qtbot.mouseClick(page.cancel_report_button, Qt.MouseButton.LeftButton)
        gated.gate.set()

    assert failed.args == ["The worklist report was cancelled; no file was written."]
    assert page.report_cancelled and not page.report_running
    assert sorted(tmp_path.iterdir()) == before  # neither the report nor a partial file
    audit = window.node.audit.read(action="export")[0]
    assert audit.target == "worklist_pdf" and audit.details == {"count": 5, "error": "ReportCancelled"}
    window.statusBar().clearMessage()
    page.report_failed.emit(failed.args[0])  # the window shows a cancel in the status bar, not as a fault
    assert window.statusBar().currentMessage() == failed.args[0]


def test_the_export_command_writes_the_report_in_the_background(qtbot, window, tmp_path, monkeypatch):
    worklist(qtbot, window, tmp_path, 3)
    target = tmp_path / "chosen.pdf"
    monkeypatch.setattr(window, "_save_path", lambda *args: target)  # the file dialog's answer

    with qtbot.waitSignal(window.predict_page.report_written, timeout=LOAD_TIMEOUT_MS):
        window.actions_by_id["export_worklist_pdf"].trigger()
        assert window.statusBar().currentMessage() == "Writing chosen.pdf in the background…"

    assert len(PdfReader(target).pages) == 1
    assert window.statusBar().currentMessage() == "Saved chosen.pdf"


def test_an_empty_worklist_has_no_report(qtbot, window, tmp_path):
    with pytest.raises(ValueError, match="worklist is empty"):
        window.predict_page.start_worklist_report(tmp_path / "none.pdf")
    assert not (tmp_path / "none.pdf").exists() and not window.predict_page.report_running
