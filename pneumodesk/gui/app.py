"""Start the desktop app: the QApplication, the main window (which opens on Owner set-up or sign-in), the
first-start notice (or the screenshot run). A node store that cannot be opened (damaged, locked, read-only, from a
newer version) stops the start with its plain message in a dialog, and nothing else is opened."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox


def create_application() -> QApplication:
    """The one QApplication (created once; high-DPI scale factors passed through unrounded)."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication([sys.argv[0] if sys.argv else "pneumodesk"])
    app.setApplicationName("PneumoDesk")
    app.setOrganizationName("PneumoDesk")
    app.setApplicationDisplayName("PneumoDesk")
    return app


def run_gui(model: Path | None = None, screenshots: Path | None = None, home: Path | None = None) -> int:
    """Open the window and run until it closes; with ``screenshots``, write the page PNGs there and exit."""
    app = create_application()
    if screenshots is not None:
        from .screenshots import ScreenshotError, take_screenshots

        try:
            written = take_screenshots(screenshots, model)
        except ScreenshotError as error:
            print(f"pneumodesk gui: {error}", file=sys.stderr)
            return 1
        for path in written:
            print(path)
        return 0 if written else 1
    from pneumodesk.node import NodeStoreError

    from .main_window import MainWindow

    try:
        window = MainWindow(home=home, bundle=model)
    except NodeStoreError as error:
        show_start_failure(str(error))
        return 1
    window.show()
    window.show_first_start_notice()
    return app.exec()


START_FAILURE_TITLE = "PneumoDesk cannot start"


def show_start_failure(message: str) -> None:
    """Tell the user, in the store error's own words, why the app cannot start; returns when they close it."""
    box = QMessageBox(QMessageBox.Icon.Critical, START_FAILURE_TITLE, message, QMessageBox.StandardButton.Close)
    box.setObjectName("start_failure")
    box.exec()
