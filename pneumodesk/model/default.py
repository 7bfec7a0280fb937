"""Where the bundled default model and sample X-rays live: PNEUMODESK_RESOURCES, else resources/ inside a frozen app
(PyInstaller's ``sys._MEIPASS``), else the checkout's resources/ beside the ``pneumodesk`` package."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_root() -> Path:
    """Found from where the code is, never from the working directory."""
    chosen = os.environ.get("PNEUMODESK_RESOURCES")
    if chosen:
        return Path(chosen)
    bundle = getattr(sys, "_MEIPASS", None)
    if getattr(sys, "frozen", False) and isinstance(bundle, str):
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


RESOURCES = resources_root()


def default_bundle_path() -> Path:
    return RESOURCES / "models" / "default"


def samples_path() -> Path:
    return RESOURCES / "samples"
