"""Where the bundled default model and sample X-rays live: the repository's resources/, or PNEUMODESK_RESOURCES."""

from __future__ import annotations

import os
from pathlib import Path

RESOURCES = Path(os.environ.get("PNEUMODESK_RESOURCES") or Path(__file__).resolve().parents[2] / "resources")


def default_bundle_path() -> Path:
    return RESOURCES / "models" / "default"


def samples_path() -> Path:
    return RESOURCES / "samples"
