"""ELF files of a bundle and the highest glibc symbol version they ask for (the .deb's libc6 dependency and the
installed-app check's figure). Standard library only: the build venv and the dev venv both run it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

GLIBC = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?\x00")


def bundle_files(bundle: Path) -> Iterator[Path]:
    for path in sorted(bundle.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as stream:
            return stream.read(4) == b"\x7fELF"
    except OSError:
        return False


def glibc_needed(bundle: Path) -> tuple[str, str]:
    """The highest GLIBC_x.y symbol version any ELF file in the bundle names, and one file naming it ("0", "")."""
    best: tuple[int, ...] = (0,)
    where = ""
    for path in bundle_files(bundle):
        if not is_elf(path):
            continue
        for match in GLIBC.finditer(path.read_bytes()):
            version = tuple(int(part) for part in match.groups() if part is not None)
            if version > best:
                best, where = version, path.relative_to(bundle).as_posix()
    return ".".join(map(str, best)), where
