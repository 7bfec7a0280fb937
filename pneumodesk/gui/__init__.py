"""The PySide6 desktop app. The only package that imports Qt; everything slow runs in its QThread workers."""

from .app import create_application, run_gui

__all__ = ["create_application", "run_gui"]
