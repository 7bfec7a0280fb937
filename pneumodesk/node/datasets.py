"""Local labelled datasets: registered in place (nothing is copied), checked for readability, split once.

A dataset is a folder with ``NORMAL/`` and ``PNEUMONIA/`` subfolders (searched recursively), or a CSV of
``path,label`` rows (label NORMAL/PNEUMONIA or 0/1, an optional header row, relative paths resolved against the
CSV's folder).

Invariants:
- nothing is copied and nothing about a dataset leaves the node; audit entries carry counts, never a path;
- every file is checked when it is registered: fully decoded with ``imaging.read_xray`` up to
  ``FULL_DECODE_LIMIT`` files, beyond that by its header (size, format, dimensions); unreadable files are listed
  with the reason and used nowhere;
- the validation split is fixed at registration and stored: grouped by patient (``patient_group`` of the file name;
  byte-identical files share a group), stratified by label, ``VALIDATION_FOLDS`` folds with seed ``SPLIT_SEED`` —
  the same scheme as ``training.split.grouped_split`` — so ~10 % of the images, never one patient on both sides;
- every readable file's content digest (sha256 of its bytes) is stored as one of the dataset's images and kept after
  removal: the privacy ledger charges a run to these images, so the same images registered again (re-added, under
  another name, copied elsewhere, a subset) carry what they have spent (DESIGN 9); a file whose bytes cannot be read
  for the digest is unreadable;
- class counts are of readable images; removal is soft (ledger entries keep their dataset) and refused while an
  approval uses the dataset.
"""

from __future__ import annotations

import builtins
import csv
import datetime as dt
import hashlib
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from pneumodesk.imaging.patient_groups import patient_group

from .accounts import AccountService
from .audit import AuditLog
from .errors import RegisteredDatasetError
from .homes import PACS_CACHE_FOLDER
from .models import ApprovalRow, Dataset, DatasetFile, DatasetImage, utcnow
from .permissions import Permission
from .session import UserSession
from .store import NodeStore

CLASS_NAMES = ("NORMAL", "PNEUMONIA")  # label 0, label 1
SPLIT_SEED = 20261127
VALIDATION_FOLDS = 10  # one fold of ten ≈ 10 % for validation
FULL_DECODE_LIMIT = 3000  # above this many files, readability is checked by header only
Split = Literal["training", "validation"]
#: a folder of NORMAL/PNEUMONIA sub-folders, a CSV of (path, label), or the clinicians' confirmed readings
#: (``confirmed_cases``: absolute paths, each checked against the digest it was read with)
DatasetKind = Literal["folder", "csv", "readings"]
_LABELS = {"normal": 0, "0": 0, "pneumonia": 1, "1": 1}


@dataclass(frozen=True)
class DatasetInfo:
    id: int
    name: str
    source: str
    kind: DatasetKind
    normal: int
    pneumonia: int
    training_count: int
    validation_count: int
    unreadable: tuple[tuple[str, str], ...]  # (relative path, reason)
    registered: dt.datetime
    registered_by: str


@dataclass(frozen=True)
class Candidate:
    """A file offered to a dataset: ``relative`` is how it is stored, ``path`` where it is read."""

    relative: str  # as stored: relative to the base folder (POSIX), or absolute when the CSV said so
    path: Path
    label: int
    digest: str | None = None  # stored with the file when set: the file is refused later if its bytes change


def _stored_kind(value: str) -> DatasetKind:
    """The ``kind`` column read back as the literal it was written from."""
    if value == "folder":
        return "folder"
    if value == "csv":
        return "csv"
    if value == "readings":
        return "readings"
    raise RegisteredDatasetError(f"The node store names an unknown dataset kind {value!r}.")


def _base(kind: str, source: Path) -> Path:
    """The folder stored paths are relative to (confirmed-case paths are absolute: joining keeps them as they are)."""
    return source if kind == "folder" else source.parent


def _folder_candidates(root: Path) -> tuple[list[Candidate], list[tuple[str, str]]]:
    from pneumodesk.imaging import is_supported_file

    missing = [name for name in CLASS_NAMES if not (root / name).is_dir()]
    if missing:
        raise RegisteredDatasetError(
            f"The dataset folder needs NORMAL and PNEUMONIA subfolders; missing: {', '.join(missing)}."
        )
    found: list[Candidate] = []
    for label, name in enumerate(CLASS_NAMES):
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and is_supported_file(path):
                found.append(Candidate(path.relative_to(root).as_posix(), path, label))
    return found, []


def _csv_candidates(source: Path) -> tuple[list[Candidate], list[tuple[str, str]]]:
    try:
        with source.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise RegisteredDatasetError(f"The CSV file cannot be read ({error}).") from None
    found: list[Candidate] = []
    problems: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if len(cells) != 2 or not cells[0]:
            problems.append((f"(row {number})", "expected two columns: path,label"))
            continue
        text, label_text = cells
        label = _LABELS.get(label_text.lower())
        if label is None:
            if number == 1:
                continue  # a header row such as "path,label"
            problems.append((text, f"row {number}: unknown label {label_text!r} (use NORMAL, PNEUMONIA, 0 or 1)"))
            continue
        relative = PurePath(text).as_posix()
        if relative in seen:
            problems.append((relative, f"row {number}: listed again (first on row {seen[relative]}), ignored"))
            continue
        seen[relative] = number
        found.append(Candidate(relative, source.parent / relative, label))
    return found, problems


def _readability_problem(path: Path, full: bool) -> str | None:
    """Why ``path`` cannot be used as an X-ray, or None. ``full``: decode it; else check size, format, dimensions."""
    from pneumodesk.imaging import XRayReadError, read_xray

    try:
        if full:
            read_xray(path)
        else:
            _check_header(path)
    except XRayReadError as error:
        return str(error)
    return None


def _check_header(path: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    from pneumodesk.imaging import CorruptImageError, EmptyFileError, UnreadableFileError, UnsupportedImageError
    from pneumodesk.imaging.limits import check_dimensions
    from pneumodesk.imaging.reader import DICOM_SUFFIXES

    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(132)
    except OSError as error:
        raise UnreadableFileError(f"The file could not be read ({error.strerror or error}).") from None
    if size == 0:
        raise EmptyFileError("The file is empty (0 bytes).")
    if head[128:132] == b"DICM" or path.suffix.lower() in DICOM_SUFFIXES:
        import pydicom
        from pydicom.errors import InvalidDicomError

        try:
            dataset = pydicom.dcmread(path, stop_before_pixels=True, force=head[128:132] != b"DICM")
            rows, columns = int(dataset.Rows), int(dataset.Columns)
        except (InvalidDicomError, AttributeError, OSError, ValueError) as error:
            raise CorruptImageError(f"The DICOM file is damaged or has no image ({error}).") from None
        check_dimensions(columns, rows)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                check_dimensions(*image.size)
                image.verify()
        except UnidentifiedImageError:
            raise UnsupportedImageError("The file is not an image PneumoDesk can read.") from None
        except Image.DecompressionBombError:
            raise UnsupportedImageError("The image claims too many pixels; it may be a decompression bomb.") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise CorruptImageError(f"The image data is damaged or incomplete ({error}).") from None


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _in_folder(path: Path, folder: Path | None) -> bool:
    if folder is None:
        return False
    try:
        return path.resolve().parent == folder.resolve()
    except OSError:
        return False


def changed_file_problem(path: Path, digest: str, pacs_cache: Path | None = None) -> str | None:
    """Why the file at ``path`` is no longer the image with content ``digest``, or None when it still is. A file in
    ``pacs_cache`` (the node's cache of images retrieved from a PACS) is named as such, with what to do."""
    from_pacs = _in_folder(path, pacs_cache)
    if not path.exists():
        if from_pacs:
            return ("The image retrieved from the PACS is no longer in this workstation's cache (cleared or pruned "
                    "since it was read); retrieve its study again to use it.")
        return "The file is no longer there (moved or deleted since it was read)."
    current = _digest(path)
    if current is None:
        return "The file can no longer be read."
    if current != digest:
        if from_pacs:
            return ("The image in this workstation's PACS cache changed since it was read (its content digest "
                    "differs); retrieve its study again to use it.")
        return "The file changed since it was read (its content digest differs)."
    return None


def _groups(readable: list[Candidate], digests: list[str]) -> list[str]:
    """Patient group per file, with byte-identical files merged into one group (union-find)."""
    parent: dict[str, str] = {}

    def find(group: str) -> str:
        while parent.setdefault(group, group) != group:
            group = parent[group]
        return group

    groups = [patient_group(PurePath(c.relative).name) for c in readable]
    first_by_digest: dict[str, str] = {}
    for group, digest in zip(groups, digests, strict=True):
        parent[find(group)] = find(first_by_digest.setdefault(digest, group))
    return [find(group) for group in groups]


def validation_mask(labels: np.ndarray, groups: list[str], seed: int = SPLIT_SEED) -> np.ndarray:
    """Boolean mask of the validation images: one stratified, patient-grouped fold (deterministic for a seed)."""
    from sklearn.model_selection import StratifiedGroupKFold

    distinct = len(set(groups))
    largest_class = int(np.bincount(labels).max()) if len(labels) else 0
    folds = min(VALIDATION_FOLDS, distinct, largest_class)  # scikit-learn refuses more folds than that
    if folds < 2:
        raise RegisteredDatasetError("A validation split needs images of at least two different patients.")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only n members"
        _, validation = next(splitter.split(np.zeros(len(labels)), labels, groups))
    mask = np.zeros(len(labels), dtype=bool)
    mask[validation] = True
    return mask


class DatasetService:
    """Registering, listing and removing datasets needs ``manage_datasets`` (reading: or ``approve_training``)."""

    def __init__(self, store: NodeStore, accounts: AccountService, audit: AuditLog) -> None:
        self.store = store
        self.accounts = accounts
        self.audit = audit

    @property
    def pacs_cache(self) -> Path:
        """The node home's folder of images retrieved from a PACS (confirmed cases may lie there)."""
        return self.store.path.parent / PACS_CACHE_FOLDER

    def changed_file_problem(self, path: Path, digest: str) -> str | None:
        """``changed_file_problem`` with this node's PACS cache named in the reason."""
        return changed_file_problem(path, digest, self.pacs_cache)

    def register(self, actor: UserSession, name: str, source: Path, *,
                 progress: Callable[[int, int], None] | None = None) -> DatasetInfo:
        """Scan ``source`` (folder or CSV) and record the dataset with its fixed split. ``progress(done, total)``
        is called as files are checked (from this thread)."""
        self.accounts.require(actor, Permission.MANAGE_DATASETS, "dataset")
        name = self.ensure_name_free(name)
        source = Path(source).expanduser().resolve()
        if source.is_dir():
            kind: DatasetKind = "folder"
            candidates, problems = _folder_candidates(source)
        elif source.is_file():
            kind = "csv"
            candidates, problems = _csv_candidates(source)
        else:
            raise RegisteredDatasetError(f"There is no folder or CSV file at {source}.")

        full = len(candidates) <= FULL_DECODE_LIMIT

        def check(candidate: Candidate) -> tuple[str | None, str | None]:
            problem = _readability_problem(candidate.path, full)
            if problem is not None:
                return problem, None
            digest = _digest(candidate.path)
            return ("The file could not be read again to compute its content digest." if digest is None
                    else None), digest

        readable: list[Candidate] = []
        digests: list[str] = []
        unreadable = list(problems)
        with ThreadPoolExecutor(max_workers=2) as pool:  # decoding releases the GIL
            for done, (candidate, (problem, digest)) in enumerate(zip(candidates, pool.map(check, candidates),
                                                                      strict=True), start=1):
                if problem is None and digest is not None:
                    readable.append(candidate)
                    digests.append(digest)
                else:
                    unreadable.append((candidate.relative, problem or "unreadable"))
                if progress is not None:
                    progress(done, len(candidates))
        return self.record(actor, name, kind, source, readable, digests, _groups(readable, digests), unreadable)

    def ensure_name_free(self, name: str) -> str:
        """The stripped name; raises ``RegisteredDatasetError`` when it is empty, too long or already taken."""
        name = name.strip()
        if not name or len(name) > 120:
            raise RegisteredDatasetError("A dataset needs a name of 1 to 120 characters.")
        with self.store.session() as session:
            taken = session.scalar(select(Dataset.id).where(Dataset.name == name, Dataset.removed.is_(None)))
        if taken is not None:
            raise RegisteredDatasetError(f"A dataset named {name!r} is already registered.")
        return name

    def record(self, actor: UserSession, name: str, kind: DatasetKind, source: Path | str,
               readable: builtins.list[Candidate], digests: builtins.list[str], groups: builtins.list[str],
               unreadable: builtins.list[tuple[str, str]]) -> DatasetInfo:
        """Split the checked files (patient-grouped by ``groups``) and store the dataset, its files and images."""
        labels = np.array([c.label for c in readable], dtype=np.int64)
        missing = [CLASS_NAMES[k] for k in (0, 1) if not (labels == k).any()]
        if missing:
            raise RegisteredDatasetError(
                f"The dataset has no readable {' or '.join(missing)} images; both classes are needed "
                f"({len(unreadable)} file(s) could not be used)."
            )
        mask = validation_mask(labels, groups)

        with self.store.session() as session:
            dataset = Dataset(name=name, source=str(source), kind=kind, normal=int((labels == 0).sum()),
                              pneumonia=int((labels == 1).sum()), training_count=int((~mask).sum()),
                              validation_count=int(mask.sum()), registered=utcnow(), registered_by=actor.username,
                              removed=None)
            session.add(dataset)
            session.flush()
            session.add_all(
                DatasetFile(dataset_id=dataset.id, path=c.relative, label=c.label,
                            split="validation" if in_validation else "training", reason="", digest=c.digest)
                for c, in_validation in zip(readable, mask, strict=True)
            )
            session.add_all(DatasetFile(dataset_id=dataset.id, path=path, label=-1, split="unreadable", reason=reason)
                            for path, reason in unreadable)
            session.add_all(DatasetImage(dataset_id=dataset.id, digest=digest) for digest in sorted(set(digests)))
            dataset_id = dataset.id
        info = self._info(dataset_id)
        self.audit.append(actor.username, "dataset_registered", f"dataset {dataset_id}", details={
            "name": name, "kind": kind, "normal": info.normal, "pneumonia": info.pneumonia,
            "validation": info.validation_count, "unreadable": len(info.unreadable),
        })
        return info

    def list(self, actor: UserSession) -> list[DatasetInfo]:
        self.accounts.require_any(actor, (Permission.MANAGE_DATASETS, Permission.APPROVE_TRAINING), "datasets")
        with self.store.session() as session:
            ids = list(session.scalars(select(Dataset.id).where(Dataset.removed.is_(None)).order_by(Dataset.id)))
        return [self._info(dataset_id) for dataset_id in ids]

    def get(self, actor: UserSession, dataset_id: int) -> DatasetInfo:
        self.accounts.require_any(actor, (Permission.MANAGE_DATASETS, Permission.APPROVE_TRAINING),
                                  f"dataset {dataset_id}")
        return self._info(dataset_id)

    def remove(self, actor: UserSession, dataset_id: int) -> None:
        """Forget the dataset (its files are untouched). Refused while an active approval uses it."""
        self.accounts.require(actor, Permission.MANAGE_DATASETS, f"dataset {dataset_id}")
        with self.store.session() as session:
            dataset = self._row(session, dataset_id)
            in_use = session.scalar(select(ApprovalRow.plan_sha256).where(
                ApprovalRow.dataset_id == dataset_id, ApprovalRow.withdrawn_at.is_(None)))
            if in_use is not None:
                raise RegisteredDatasetError(
                    f"Dataset {dataset_id} is used by the approved plan {in_use[:12]}…; withdraw that approval first."
                )
            dataset.removed = utcnow()
            name = dataset.name
            session.execute(delete(DatasetFile).where(DatasetFile.dataset_id == dataset_id))
        self.audit.append(actor.username, "dataset_removed", f"dataset {dataset_id}", details={"name": name})

    def files(self, dataset_id: int, split: Split) -> builtins.list[tuple[Path, int]]:  # ``list``: the method above
        """The usable files of one side of the split, as (absolute path, label 1 = pneumonia), in stored order; a
        file stored with its digest (confirmed cases) is left out when its bytes changed or it vanished
        (``checked_files`` says why).

        No actor: the participation engine calls this only after checking an approval."""
        return self.checked_files(dataset_id, split)[0]

    def checked_files(self, dataset_id: int, split: Split) -> tuple[builtins.list[tuple[Path, int]],
                                                                      builtins.list[tuple[Path, str]]]:
        """(usable files, refused files with the reason): a file stored with a digest is hashed again and refused,
        row by row, when it vanished or its bytes no longer match; the others are used as they are."""
        if split not in ("training", "validation"):
            raise ValueError(f"split must be 'training' or 'validation', not {split!r}")
        with self.store.session() as session:
            dataset = self._row(session, dataset_id)
            base = _base(dataset.kind, Path(dataset.source))
            query = (select(DatasetFile.path, DatasetFile.label, DatasetFile.digest)
                     .where(DatasetFile.dataset_id == dataset_id, DatasetFile.split == split).order_by(DatasetFile.id))
            rows = [(base / path, int(label), digest) for path, label, digest in session.execute(query)]
        usable: builtins.list[tuple[Path, int]] = []
        refused: builtins.list[tuple[Path, str]] = []
        for path, label, digest in rows:
            problem = None if digest is None else self.changed_file_problem(path, digest)
            if problem is None:
                usable.append((path, label))
            else:
                refused.append((path, problem))
        return usable, refused

    # --- helpers ---
    @staticmethod
    def _row(session: Session, dataset_id: int) -> Dataset:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None or dataset.removed is not None:
            raise RegisteredDatasetError(f"There is no dataset {dataset_id}.")
        return dataset

    def _info(self, dataset_id: int) -> DatasetInfo:
        with self.store.session() as session:
            d = self._row(session, dataset_id)
            unreadable = tuple((path, reason) for path, reason in session.execute(
                select(DatasetFile.path, DatasetFile.reason)
                .where(DatasetFile.dataset_id == dataset_id, DatasetFile.split == "unreadable")
                .order_by(DatasetFile.id)))
            return DatasetInfo(d.id, d.name, d.source, _stored_kind(d.kind), d.normal, d.pneumonia,
                               d.training_count, d.validation_count, unreadable, d.registered, d.registered_by)
