"""Only single-frame CR/DX chest images pass; everything else gets the reason it is skipped."""

from __future__ import annotations

import pytest

from pneumodesk.pacs.screening import skip_reason

from .instances import StudyIds, cr_instance, multiframe, structured_report

IDS = StudyIds("1.2.3", "1.2.3.1", "1.2.3.2")


def test_a_chest_radiograph_passes():
    assert skip_reason(cr_instance(IDS, 1, 64)) is None


@pytest.mark.parametrize(("change", "reason"), [
    (lambda d: setattr(d, "BodyPartExamined", "KNEE"), "body part KNEE"),
    (lambda d: setattr(d, "Modality", "CT"), "modality CT"),
    (lambda d: setattr(d, "Modality", ""), "modality not given"),
])
def test_other_radiographs_are_skipped_with_the_reason(change, reason):
    dataset = cr_instance(IDS, 1, 64)
    change(dataset)
    assert reason in (skip_reason(dataset) or "")


def test_non_images_and_multi_frame_objects_are_skipped():
    assert "holds no image" in (skip_reason(structured_report(IDS)) or "")
    assert "multi-frame" in (skip_reason(multiframe(IDS, IDS.cr_series_uid)) or "")
