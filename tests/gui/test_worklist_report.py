"""The worklist report (PDF): every image of the worklist as shown, one line each with a thumbnail, over as many
pages as it needs; audited as an export; an image file gone since prediction gets an empty box and says so."""

from __future__ import annotations

import pytest
from pypdf import PdfReader

from tests.builders import chest_like, write_png
from tests.gui.conftest import run_batch


def test_the_worklist_report_lists_every_image_with_a_thumbnail_across_pages(qtbot, window, tmp_path):
    paths = [write_png(tmp_path / f"chest_{i:02d}.png", chest_like(72, 72, seed=i)) for i in range(14)]
    page = window.predict_page
    run_batch(qtbot, window, paths)
    page.set_verdict("agree")
    paths[5].unlink()  # gone since it was predicted
    target = tmp_path / "out.pdf"

    page.export_worklist_pdf(target)

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


def test_an_empty_worklist_has_no_report(qtbot, window, tmp_path):
    with pytest.raises(ValueError, match="worklist is empty"):
        window.predict_page.export_worklist_pdf(tmp_path / "none.pdf")
    assert not (tmp_path / "none.pdf").exists()
