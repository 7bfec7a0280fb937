"""Files only their owner may read: written 0600 from the first byte, checked before a secret is trusted."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from .errors import KeyStoreError


def write_private(path: Path, data: bytes) -> None:
    """Write a file readable by its owner only (0600 from creation, atomically replaced, fsynced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` (and parents) and make it 0700: the home of this node's secrets."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def require_owner_only(path: Path) -> None:
    """Refuse a secret file that other users can read or write (POSIX); raises ``FileNotFoundError`` if absent."""
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyStoreError(f"{path} can be read by other users; make it readable by its owner only (chmod 600) "
                            "and try again.")
