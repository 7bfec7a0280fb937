"""Which patient (or study) an X-ray file belongs to, from its file name (or a DICOM file's PatientID): images of
one patient never straddle a training/validation split. ``patient_group`` is pure and dependency-free, so both the
node (dataset registration) and training (which re-exports it) use this one definition."""

from __future__ import annotations

import re
from pathlib import Path, PurePath

_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_STUDY = re.compile(r"(IM-\d+)-", re.IGNORECASE)


def patient_group(file_name: str) -> str:
    """Patient/study id from a Kermany-style file name (``person123_bacteria_4.jpeg`` → ``person123``,
    ``NORMAL2-IM-0123-0001.jpeg`` and ``IM-0123-0002.jpeg`` → ``IM-0123``); otherwise the file's own stem."""
    for pattern in (_PERSON, _STUDY):
        match = pattern.search(file_name)
        if match:
            return match.group(1).upper() if pattern is _STUDY else match.group(1).lower()
    return PurePath(file_name).stem


def dicom_patient_id(path: Path) -> str | None:
    """The DICOM PatientID of ``path`` (header only, no pixels), or None for a non-DICOM file or an empty tag."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with path.open("rb") as handle:
            head = handle.read(132)
        if head[128:132] != b"DICM":
            return None
        dataset = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PatientID"])
    except (OSError, InvalidDicomError, ValueError):
        return None
    value = str(getattr(dataset, "PatientID", "") or "").strip()
    return value or None
