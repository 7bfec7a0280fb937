"""Where the desktop app keeps its files, and its persisted settings (a QSettings ini file in that folder)."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

from pneumodesk.node.homes import APP_NAME, HOME_ENV, Homes, resolve_homes

__all__ = ["APP_NAME", "HOME_ENV", "Settings", "app_homes"]

THEMES = ("dark", "light")
DEFAULT_OPACITY = 0.45
DEFAULT_LOCK_MINUTES = 10
LOCK_MINUTES_RANGE = (1, 240)


def app_homes(explicit: str | os.PathLike[str] | None = None) -> Homes:
    """The node home and this user's home (``pneumodesk.node.homes``): one folder for both with ``explicit`` or
    ``$PNEUMODESK_HOME``; the machine-wide node folder and the user's data folder in an installed app.

    Tests and screenshots pass their own folder so they never read or change a user's real settings or verdicts.
    """
    return resolve_homes(explicit)


class Settings:
    """Typed access to ``settings.ini`` in the app home. Every setter writes through, so a crash loses nothing.

    Invariants: ``theme`` is one of ``THEMES``; ``heatmap_opacity`` is in [0, 1]; stored values never include
    image content, only preferences and the last folder the user chose.
    """

    def __init__(self, home: Path) -> None:
        self.path = home / "settings.ini"
        self._store = QSettings(str(self.path), QSettings.Format.IniFormat)

    def _set(self, key: str, value: object) -> None:
        self._store.setValue(key, value)
        self._store.sync()

    @property
    def theme(self) -> str:
        value = str(self._store.value("appearance/theme", "dark"))
        return value if value in THEMES else "dark"

    @theme.setter
    def theme(self, value: str) -> None:
        if value not in THEMES:
            raise ValueError(f"unknown theme {value!r}")
        self._set("appearance/theme", value)

    @property
    def operating_point(self) -> str | None:
        value = self._store.value("prediction/operating_point", "")
        return str(value) or None

    @operating_point.setter
    def operating_point(self, value: str | None) -> None:
        self._set("prediction/operating_point", value or "")

    @property
    def heatmap_opacity(self) -> float:
        try:
            value = float(str(self._store.value("viewer/heatmap_opacity", DEFAULT_OPACITY)))
        except (TypeError, ValueError):
            value = DEFAULT_OPACITY
        return min(max(value, 0.0), 1.0)

    @heatmap_opacity.setter
    def heatmap_opacity(self, value: float) -> None:
        self._set("viewer/heatmap_opacity", round(min(max(float(value), 0.0), 1.0), 3))

    @property
    def last_folder(self) -> str:
        return str(self._store.value("files/last_folder", "") or "")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._set("files/last_folder", value)

    @property
    def intended_use_acknowledged(self) -> bool:
        return str(self._store.value("notices/intended_use_acknowledged", "false")).lower() == "true"

    @intended_use_acknowledged.setter
    def intended_use_acknowledged(self, value: bool) -> None:
        self._set("notices/intended_use_acknowledged", "true" if value else "false")

    @property
    def lock_minutes(self) -> int:
        """Idle minutes before the window locks itself (default 10), within ``LOCK_MINUTES_RANGE``."""
        try:
            value = int(str(self._store.value("security/lock_minutes", DEFAULT_LOCK_MINUTES)))
        except (TypeError, ValueError):
            value = DEFAULT_LOCK_MINUTES
        return min(max(value, LOCK_MINUTES_RANGE[0]), LOCK_MINUTES_RANGE[1])

    @lock_minutes.setter
    def lock_minutes(self, value: int) -> None:
        self._set("security/lock_minutes", min(max(int(value), LOCK_MINUTES_RANGE[0]), LOCK_MINUTES_RANGE[1]))

    @property
    def clear_pacs_cache_at_sign_out(self) -> bool:
        """Whether instances retrieved from the PACS are deleted from this workstation when a user signs out."""
        return str(self._store.value("pacs/clear_cache_at_sign_out", "false")).lower() == "true"

    @clear_pacs_cache_at_sign_out.setter
    def clear_pacs_cache_at_sign_out(self, value: bool) -> None:
        self._set("pacs/clear_cache_at_sign_out", "true" if value else "false")
