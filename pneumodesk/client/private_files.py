"""Files only their owner may read — or, in a machine-wide node home, only their owner and the folder's group (the
installer's ``pneumodesk`` group of staff accounts): written so from the first byte, checked before a secret is
trusted."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .errors import KeyStoreError


def write_private(path: Path, data: bytes, *, group: bool = False) -> None:
    """Write a file readable by its owner only (0600 from creation; 0660 with ``group``), atomically replaced,
    fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o660 if group else 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def make_private_folder(folder: Path, *, group: bool = False) -> None:
    """Create ``folder`` (and parents) and make it 0700 (2770 with ``group``: setgid, so files keep the group): the
    home of this node's secrets."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o2770 if group else 0o700)


def require_owner_only(path: Path, *, group: bool = False) -> None:
    """Refuse a secret file that other users (beyond its group, with ``group``) can read or write (POSIX); raises
    ``FileNotFoundError`` if absent."""
    mode = path.stat().st_mode
    forbidden = stat.S_IRWXO if group else stat.S_IRWXG | stat.S_IRWXO
    if os.name == "posix" and mode & forbidden:
        allowed = "its owner and group only (chmod 660)" if group else "its owner only (chmod 600)"
        raise KeyStoreError(f"{path} can be read by other users; make it readable by {allowed} and try again.")
