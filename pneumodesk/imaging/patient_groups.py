"""Which patient (or study) an X-ray file belongs to, from its file name: images of one patient never straddle a
training/validation split. Pure and dependency-free, so both the node (dataset registration) and training (which
re-exports it) use this one definition."""

from __future__ import annotations

import re
from pathlib import PurePath

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
