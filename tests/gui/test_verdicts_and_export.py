"""Verdicts survive a restart (keyed by content, not name); PDF and CSV exports hold the right facts and no path."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime

from pypdf import PdfReader

from pneumodesk.gui.export import default_export_name
from pneumodesk.gui.verdicts import VerdictStore, file_sha256
from pneumodesk.model.default import samples_path
from tests.gui.conftest import run_batch


def test_verdicts_persist_across_restarts_keyed_by_file_content(qtbot, make_window, home, tmp_path):
    first_folder, second_folder = tmp_path / "first", tmp_path / "second"
    shutil.copytree(samples_path(), first_folder)
    second_folder.mkdir()
    for index, path in enumerate(sorted(first_folder.glob("*.jpeg"))):
        shutil.copy(path, second_folder / f"renamed_{index}.jpeg")  # same bytes, other name and folder
    window = make_window()
    run_batch(qtbot, window, [first_folder])
    page = window.predict_page
    page.select_proxy_row(0)
    judged = page.model.entry(page.current_row())
    page.set_verdict("disagree")
    window.close()

    again = make_window()
    run_batch(qtbot, again, [second_folder])

    verdicts = {item.name: item.verdict for item in again.predict_page.model.entries()}
    renamed = f"renamed_{sorted(p.name for p in first_folder.glob('*.jpeg')).index(judged.name)}.jpeg"
    assert verdicts[renamed] == "disagree"
    assert [v for name, v in verdicts.items() if name != renamed] == [None] * 7
    stored = (home / "verdicts.json").read_text()
    assert json.loads(stored)["verdicts"][file_sha256(judged.path)]["verdict"] == "disagree"
    assert judged.name not in stored and str(tmp_path) not in stored


def test_verdict_store_keeps_only_verdict_and_time(tmp_path):
    store = VerdictStore(tmp_path / "v.json")

    store.set("abc", "agree")
    store.set("def", "disagree")
    store.set("def", None)
    reopened = VerdictStore(tmp_path / "v.json")

    assert reopened.get("abc") == "agree" and reopened.get("def") is None
    entry = json.loads((tmp_path / "v.json").read_text())["verdicts"]["abc"]
    assert set(entry) == {"verdict", "time"}
    datetime.fromisoformat(entry["time"])


def shown_sample_window(qtbot, window):
    run_batch(qtbot, window, [samples_path()])
    page = window.predict_page
    page.select_proxy_row(2)
    qtbot.waitUntil(lambda: page.shown is not None and page.shown[0] == page.current_row(), timeout=60_000)
    return page


def test_pdf_report_holds_the_facts_and_no_file_name_or_path(qtbot, window, tmp_path):
    page = shown_sample_window(qtbot, window)
    page.set_verdict("agree")
    item = page.model.entry(page.current_row())
    target = tmp_path / "out" / default_export_name("report", "pdf")
    target.parent.mkdir()

    page.export_pdf(target)

    raw = target.read_bytes()
    assert raw.startswith(b"%PDF")
    reader = PdfReader(target)
    text = " ".join((p.extract_text() or "") for p in reader.pages)
    flat = " ".join(text.split())
    assert len(reader.pages) == 1
    assert "Image 3 of 8" in flat
    assert f"Probability of pneumonia: {item.prediction.probability * 100:.1f} %" in flat
    assert f"Decision: {item.prediction.label} at operating point balanced" in flat
    assert "Model: test model, version test-1" in flat
    assert "Reviewer verdict: agree with the model" in flat
    assert "not a localisation" in flat
    assert len(reader.pages[0].images) == 2  # the X-ray and its heat-map overlay
    for secret in (item.name, item.path.stem, str(item.path.parent)):
        assert secret not in flat and secret.encode() not in raw


def test_pdf_export_without_a_shown_image_says_why(qtbot, window):
    page = window.predict_page
    try:
        page.export_pdf(window.home / "r.pdf")
    except ValueError as error:
        assert "Select a predicted image" in str(error)
    else:
        raise AssertionError("exporting with nothing selected must fail with a plain message")
    assert not (window.home / "r.pdf").exists()


def test_csv_export_lists_the_worklist_as_shown_without_folders(qtbot, window, xray_folder, tmp_path):
    run_batch(qtbot, window, [xray_folder])
    page = window.predict_page
    page.select_proxy_row(0)
    page.set_verdict("agree")
    target = tmp_path / default_export_name("worklist", "csv")

    page.export_csv(target)

    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    items = page.visible_items()
    assert [row["file"] for row in rows] == [item.name for item in items]
    assert rows[0]["verdict"] == "agree" and rows[0]["status"] == "done"
    assert float(rows[0]["probability"]) == round(items[0].prediction.probability, 4)
    assert rows[0]["decision"] == items[0].prediction.label and rows[0]["model_version"] == "test-1"
    errors = [row for row in rows if row["status"] == "error"]
    assert {row["file"] for row in errors} == {"broken.png", "empty.jpg"}
    assert all(row["error"] and not row["probability"] for row in errors)
    assert str(xray_folder) not in target.read_text(encoding="utf-8")


def test_default_export_names_carry_only_kind_and_time():
    when = datetime(2026, 11, 27, 14, 32)
    assert default_export_name("report", "pdf", when) == "pneumodesk-report-2026-11-27-1432.pdf"
    assert default_export_name("worklist", "csv", when) == "pneumodesk-worklist-2026-11-27-1432.csv"


def test_the_worklist_csv_defuses_file_names_and_errors(tmp_path):
    from pathlib import Path

    from pneumodesk.gui.export import write_worklist_csv
    from pneumodesk.gui.widgets.worklist_model import Status, WorklistItem

    hostile = ('=HYPERLINK("https:evil.example","click")', "+cmd|' -C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1", "\r=1")
    items = [WorklistItem(Path("/scans") / f"{cell}.png", Status.ERROR, error=cell) for cell in hostile]

    with write_worklist_csv(items, tmp_path / "w.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    assert [row["file"] for row in rows] == [f"'{cell}.png" for cell in hostile]
    assert [row["error"] for row in rows] == [f"'{cell}" for cell in hostile]


def test_a_refused_image_says_outside_intended_use_in_the_worklist_and_its_pdf(qtbot, make_window, tmp_path):
    import numpy as np

    from pneumodesk.model import FeatureDistribution
    from pneumodesk.training.out_of_distribution import fit_distribution
    from tests.builders import make_tiny_bundle

    bundle = make_tiny_bundle()
    fitted = fit_distribution(np.random.default_rng(0).standard_normal((64, 32)), np.arange(64) % 2)
    refusing = bundle.with_ood(FeatureDistribution(fitted.means, fitted.precision, -1.0, fitted.method))
    window = make_window(bundle=refusing.save(tmp_path / "refusing"))
    run_batch(qtbot, window, [samples_path()])
    page = window.predict_page
    items = page.model.entries()
    assert all(item.prediction is None and item.outside_intended_use for item in items)
    assert all(item.error and item.error.startswith("Outside the model's intended use") for item in items)
    page.select_proxy_row(0)
    target = tmp_path / "refused.pdf"

    page.export_pdf(target)

    flat = " ".join(" ".join((p.extract_text() or "") for p in PdfReader(target).pages).split())
    assert "Outside the model's intended use" in flat and "Probability" not in flat
    assert "Model: test model, version test-1" in flat
