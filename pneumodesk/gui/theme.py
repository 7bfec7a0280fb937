"""Dark (reading-room default) and light themes: a Fusion palette plus a small style sheet."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication


@dataclass(frozen=True)
class Colours:
    window: str
    base: str
    alternate: str
    text: str
    muted: str
    button: str
    highlight: str
    positive: str  # decision PNEUMONIA
    negative: str  # decision NORMAL
    error: str
    sidebar: str
    border: str


DARK = Colours(
    window="#1b1e23", base="#121417", alternate="#191c20", text="#e3e6ea", muted="#9aa3ad", button="#272b31",
    highlight="#2e6fb7", positive="#ff8a65", negative="#7fd1a8", error="#ff6b6b", sidebar="#15171b", border="#30353c",
)
LIGHT = Colours(
    window="#f3f4f6", base="#ffffff", alternate="#f6f7f9", text="#1d2126", muted="#5b6470", button="#e6e8eb",
    highlight="#2a6bc2", positive="#c4411a", negative="#1f7a4d", error="#b3261e", sidebar="#e7e9ec", border="#c9ced4",
)


def colours(theme: str) -> Colours:
    return LIGHT if theme == "light" else DARK


def apply_theme(app: QApplication, theme: str) -> Colours:
    """Apply ``theme`` ("dark" or "light") to the whole application and return its colours."""
    c = colours(theme)
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: c.window,
        QPalette.ColorRole.WindowText: c.text,
        QPalette.ColorRole.Base: c.base,
        QPalette.ColorRole.AlternateBase: c.alternate,
        QPalette.ColorRole.Text: c.text,
        QPalette.ColorRole.Button: c.button,
        QPalette.ColorRole.ButtonText: c.text,
        QPalette.ColorRole.Highlight: c.highlight,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.ToolTipBase: c.button,
        QPalette.ColorRole.ToolTipText: c.text,
        QPalette.ColorRole.PlaceholderText: c.muted,
        QPalette.ColorRole.Link: c.highlight,
        QPalette.ColorRole.Mid: c.border,
    }
    for role, value in roles.items():
        palette.setColor(role, QColor(value))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(c.muted))
    app.setPalette(palette)
    app.setStyleSheet(_style_sheet(c))
    app.setProperty("pneumodesk_theme", theme)
    return c


def _style_sheet(c: Colours) -> str:
    return f"""
    QListWidget#sidebar {{ background: {c.sidebar}; border: none; border-right: 1px solid {c.border};
        font-size: 11pt; padding-top: 8px; outline: 0; }}
    QListWidget#sidebar::item {{ padding: 10px 14px; border-radius: 6px; margin: 2px 6px; }}
    QListWidget#sidebar::item:selected {{ background: {c.highlight}; color: #ffffff; }}
    QLabel#brand {{ font-size: 13pt; font-weight: 600; padding: 12px 14px 4px 14px; }}
    QLabel#muted, QLabel#caveat {{ color: {c.muted}; }}
    QLabel#probability {{ font-size: 26pt; font-weight: 600; }}
    QLabel#decision_positive {{ color: {c.positive}; font-size: 14pt; font-weight: 600; }}
    QLabel#decision_negative {{ color: {c.negative}; font-size: 14pt; font-weight: 600; }}
    QLabel#error_text {{ color: {c.error}; }}
    QFrame#panel {{ background: {c.alternate}; border: 1px solid {c.border}; border-radius: 8px; }}
    QHeaderView::section {{ background: {c.button}; color: {c.text}; padding: 5px; border: none;
        border-right: 1px solid {c.border}; border-bottom: 1px solid {c.border}; }}
    QTableView {{ gridline-color: {c.border}; selection-background-color: {c.highlight}; }}
    QStatusBar {{ border-top: 1px solid {c.border}; }}
    QStatusBar QLabel {{ padding: 0 8px; }}
    QProgressBar {{ border: 1px solid {c.border}; border-radius: 4px; text-align: center; height: 16px; }}
    QProgressBar::chunk {{ background: {c.highlight}; border-radius: 3px; }}
    QPushButton {{ padding: 5px 12px; }}
    QPushButton:checked {{ background: {c.highlight}; color: #ffffff; border: 1px solid {c.highlight}; }}
    """
