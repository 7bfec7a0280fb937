"""GUI test set-up: a real main window on a tiny model bundle, with its own app home (never the user's)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pneumodesk.gui.main_window import MainWindow
from pneumodesk.node import UserSession
from tests.builders import chest_like, dicom_dataset, to_uint16, write_dicom, write_jpeg, write_png
from tests.node_builders import CLINICIAN, seed_node, sign_in

LOAD_TIMEOUT_MS = 60_000
BATCH_TIMEOUT_MS = 120_000


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An app home whose node store already has an Owner and a Clinician (see ``tests.node_builders``)."""
    folder = tmp_path / "home"
    seed_node(folder)
    return folder


@pytest.fixture
def session(home: Path) -> UserSession:
    """The Clinician (predict, review, export_reports), signed in: what a reader's window starts with."""
    return sign_in(home, CLINICIAN[0], CLINICIAN[2])


@pytest.fixture
def make_window(qtbot, tiny_bundle_dir: Path, home: Path, session: UserSession) -> Callable[..., MainWindow]:
    """Build a shown MainWindow (signed in as ``session``) whose model has loaded; pytest-qt closes it (joining its
    threads) at teardown."""

    def make(home_dir: Path = home, bundle: Path = tiny_bundle_dir, as_user: UserSession | None = session
             ) -> MainWindow:
        window = MainWindow(home=home_dir, bundle=bundle, session=as_user)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitUntil(lambda: window.predictor is not None, timeout=LOAD_TIMEOUT_MS)
        return window

    return make


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


def run_batch(qtbot, window: MainWindow, paths: list[Path]) -> bool:
    """Add ``paths`` and wait for the batch to finish; returns whether it was cancelled."""
    page = window.predict_page
    with qtbot.waitSignal(page.batch_finished, timeout=BATCH_TIMEOUT_MS) as blocker:
        page.add_paths(paths)
    return bool(blocker.args[0])


@pytest.fixture
def xray_folder(tmp_path: Path) -> Path:
    """Four good X-rays (PNG, 16-bit PNG, JPEG, DICOM) in nested folders, and two bad files."""
    folder = tmp_path / "xrays"
    (folder / "nested").mkdir(parents=True)
    write_png(folder / "a_chest.png", chest_like(96, 80, seed=1))
    write_png(folder / "b_chest16.png", chest_like(90, 100, seed=2), mode="I;16")
    write_jpeg(folder / "nested" / "c_chest.jpg", chest_like(120, 100, seed=3))
    write_dicom(folder / "nested" / "d_chest.dcm", dicom_dataset(to_uint16(chest_like(100, 90, seed=4)) >> 4))
    (folder / "broken.png").write_bytes(b"this is not an image at all" * 10)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


GOOD_NAMES = {"a_chest.png", "b_chest16.png", "c_chest.jpg", "d_chest.dcm"}
BAD_NAMES = {"broken.png", "empty.jpg"}


def many_copies(folder: Path, count: int) -> list[Path]:
    """``count`` small PNG files (for batches long enough to cancel or close during)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = write_png(folder / "source.png", chest_like(64, 64, seed=9))
    data = source.read_bytes()
    source.unlink()
    paths = []
    for i in range(count):
        path = folder / f"copy_{i:04d}.png"
        path.write_bytes(data)
        paths.append(path)
    return paths


def noise(seed: int, shape: tuple[int, int] = (64, 64)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape, dtype=np.float32)
