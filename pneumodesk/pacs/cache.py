"""The workstation-local cache of retrieved instances: files named by a digest of the instance UID, owner-only, or
shared with the node's group in a machine-wide node home (``shared``; see ``CacheModes``).

Invariants: a file's name reveals nothing about the patient (sha256 of the SOP Instance UID); files are written
whole (temporary name, then rename) so a reader never sees half an instance; ``prune()`` removes files older than
``max_age`` and then the oldest until the total is within ``max_bytes``; files held by the running retrieval are
never pruned by it, nor are the files a caller asks to keep (``PacsService`` keeps the images that carry a
clinician's confirmed reading: they are Confirmed cases, used where they lie, by content digest). The cache feeds
training only through a registered dataset (its folder, or the Confirmed cases with their digests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pneumodesk.node.homes import PACS_CACHE_FOLDER

CACHE_FOLDER = PACS_CACHE_FOLDER
DEFAULT_MAX_BYTES = 2 * 2**30
DEFAULT_MAX_AGE = dt.timedelta(days=7)


@dataclass(frozen=True)
class CacheModes:
    """Permission bits of the cache folder and of its files."""

    folder: int
    file: int


#: A user's own node home (development, ``--home``): only this OS user reads the cached images.
PRIVATE_MODES = CacheModes(folder=0o700, file=0o600)
#: A machine-wide node home (``pneumodesk.node.homes``: one node per workstation, shared through the ``pneumodesk``
#: group, setgid 2770): every OS user's session retrieves into the cache and prunes it, so the folder is the group's
#: like the rest of the home (2770), and an admin signed in as another OS user must read the confirmed images in it
#: (Confirmed cases used where they lie), so files are group-readable (0640). Nobody rewrites a file in place (a
#: re-stored instance replaces it by rename), hence no group write on files; nothing for anyone outside the group.
SHARED_MODES = CacheModes(folder=0o2770, file=0o640)


@dataclass(frozen=True)
class CacheLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age: dt.timedelta = DEFAULT_MAX_AGE


class PacsCache:
    def __init__(self, folder: Path, limits: CacheLimits | None = None, *, shared: bool = False) -> None:
        """``shared``: the cache is in a machine-wide node home (``SHARED_MODES``), else owner-only."""
        self.folder = Path(folder)
        self.limits = limits or CacheLimits()
        self.modes = SHARED_MODES if shared else PRIVATE_MODES

    def _ensure_folder(self) -> None:
        """Create the folder with its mode; one this OS user owns with other bits (e.g. an owner-only folder made
        before the home became machine-wide) gets them set."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=self.modes.folder & 0o777)
        info = self.folder.stat()
        if os.name == "posix" and info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) != self.modes.folder:
            os.chmod(self.folder, self.modes.folder)

    def path_for(self, sop_instance_uid: str) -> Path:
        digest = hashlib.sha256(sop_instance_uid.encode("ascii", "replace")).hexdigest()[:40]
        return self.folder / f"{digest}.dcm"

    def store(self, dataset: Dataset, file_meta: FileMetaDataset | None = None) -> Path:
        """Write ``dataset`` as a DICOM file (with preamble); returns its path. Re-storing an instance replaces it."""
        self._ensure_folder()
        meta = file_meta or getattr(dataset, "file_meta", None) or FileMetaDataset()
        if "TransferSyntaxUID" not in meta:
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.MediaStorageSOPClassUID = dataset.SOPClassUID
        meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.file_meta = meta
        target = self.path_for(str(dataset.SOPInstanceUID))
        partial = target.with_suffix(f".part{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.modes.file)
        if hasattr(os, "fchmod"):  # the mode whatever the process umask (os.open's mode is masked by it)
            os.fchmod(descriptor, self.modes.file)
        with os.fdopen(descriptor, "wb") as handle:
            dataset.save_as(handle, enforce_file_format=True)
        os.replace(partial, target)
        return target

    def files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [path for path in self.folder.glob("*.dcm") if path.is_file()]

    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files())

    def prune(self, keep: Iterable[Path] = ()) -> int:
        """Apply the age limit and then the size cap; returns how many files were removed."""
        kept = {Path(path).resolve() for path in keep}
        now = time.time()
        entries = sorted(((p.stat().st_mtime, p.stat().st_size, p.resolve()) for p in self.files()),
                         key=lambda e: e[0])
        removed = 0
        survivors = []
        for mtime, size, path in entries:
            if path not in kept and now - mtime > self.limits.max_age.total_seconds():
                path.unlink(missing_ok=True)
                removed += 1
            else:
                survivors.append((mtime, size, path))
        total = sum(size for _, size, _ in survivors)
        for _, size, path in survivors:  # oldest first
            if total <= self.limits.max_bytes:
                break
            if path in kept:
                continue
            path.unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed

    def clear(self) -> int:
        files = self.files()
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)
