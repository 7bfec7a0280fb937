"""Where an app's files live: the node home (store, audit chain, privacy ledger, node key, verdicts) and the user home
(theme, last folder, window state) — one machine-wide node per workstation once PneumoDesk is installed.

Choice, first match wins:
1. ``--home DIR`` or ``$PNEUMODESK_HOME``: both homes are that folder (development, tests, the demo, ``make run``
   with a chosen folder).
2. An installed app — frozen by PyInstaller, ``$PNEUMODESK_MACHINE_HOME`` set, or an ``install.json`` beside the
   executable naming ``machine_home`` (the installer writes it): the node home is the machine-wide folder
   (``/var/lib/pneumodesk``, ``%ProgramData%\\PneumoDesk``, ``/Library/Application Support/PneumoDesk``), the user
   home the OS user's data folder. Every OS user of the workstation is then the same node: one ledger, one ε cap.
3. Otherwise (a development checkout): both homes are the user's data folder, as before.

A machine home is shared through a group (``pneumodesk`` on Linux/macOS, created by the installer with the folder,
setgid, mode 2770): the app sets its umask to 007 while it uses one, so every file it creates there stays readable
and writable by the group and by nobody else. ``MACHINE_MARKER`` in a folder marks it as a machine home; the node
key store reads it to keep the key in a group-shared encrypted file instead of one user's keyring.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "PneumoDesk"
HOME_ENV = "PNEUMODESK_HOME"
MACHINE_HOME_ENV = "PNEUMODESK_MACHINE_HOME"
INSTALL_CONFIG = "install.json"
MACHINE_MARKER = ".machine-wide"
MACHINE_UMASK = 0o007
#: the node home's folder of images retrieved from a PACS (``pneumodesk.pacs.cache``); confirmed cases read from it
#: are named as such when they are refused
PACS_CACHE_FOLDER = "pacs-cache"


@dataclass(frozen=True)
class Homes:
    """``node``: the node's folder; ``user``: this OS user's preferences. Equal outside an installed app."""

    node: Path
    user: Path

    @property
    def machine_wide(self) -> bool:
        return self.node != self.user


def default_machine_home(platform: str = sys.platform) -> Path:
    """The OS's folder for data shared by every user of the machine."""
    if platform.startswith("win"):
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / APP_NAME
    if platform == "darwin":
        return Path("/Library/Application Support") / APP_NAME
    return Path("/var/lib/pneumodesk")


def install_config_path() -> Path:
    """``install.json`` beside the running executable (frozen) or the interpreter (an installed virtual environment)."""
    return Path(sys.executable).resolve().parent / INSTALL_CONFIG


def machine_home() -> Path | None:
    """The machine-wide node home when this is an installed app, else None (see the module docstring)."""
    if os.environ.get(MACHINE_HOME_ENV):
        return Path(os.environ[MACHINE_HOME_ENV])
    config = install_config_path()
    if config.is_file():
        try:
            chosen = json.loads(config.read_text(encoding="utf-8")).get("machine_home")
        except (OSError, ValueError, AttributeError):
            chosen = None
        if isinstance(chosen, str) and chosen:
            return Path(chosen)
    if getattr(sys, "frozen", False):
        return default_machine_home()
    return None


def user_home() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resolve_homes(explicit: str | os.PathLike[str] | None = None) -> Homes:
    """Both homes, created if missing; entering a machine home sets the group-sharing umask (see above)."""
    chosen = explicit or os.environ.get(HOME_ENV)
    if chosen:
        homes = Homes(Path(chosen), Path(chosen))
    else:
        shared = machine_home()
        homes = Homes(shared, user_home()) if shared is not None else Homes(user_home(), user_home())
    if homes.machine_wide:
        os.umask(MACHINE_UMASK)
        homes.node.mkdir(parents=True, exist_ok=True)
        (homes.node / MACHINE_MARKER).touch(exist_ok=True)
    for folder in {homes.node, homes.user}:
        folder.mkdir(parents=True, exist_ok=True)
    return homes


def is_machine_home(folder: Path) -> bool:
    return (folder / MACHINE_MARKER).is_file()
