"""The "Confirmed cases" dataset: the clinicians' confirmed readings (normal or pneumonia, never unsure) gathered
into a labelled dataset, registered like a folder dataset.

Invariants: images stay where they were read; each file is stored with the content digest it was read with and
refused, with its reason, when it vanished, changed, or cannot be decoded — row by row, never stopping the rest;
patients are grouped by the DICOM PatientID when the file has one, else each image is its own patient, so one
patient's images are never on both sides of the validation split; the dataset's images (by digest) carry their own
privacy ledger like any dataset's (DESIGN 9); registering needs ``manage_datasets`` and is audited with counts only.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from pneumodesk.imaging.patient_groups import dicom_patient_id

from .accounts import AccountService
from .datasets import Candidate, DatasetInfo, DatasetService, _readability_problem
from .models import Dataset
from .permissions import Permission
from .readings import ClinicalReading, ReadingService
from .session import UserSession

SOURCE = "confirmed cases (clinical readings)"
DEFAULT_NAME = "Confirmed cases"


def _group(reading: ClinicalReading) -> str:
    patient = dicom_patient_id(reading.path)
    return f"patient:{patient}" if patient else f"image:{reading.digest}"


class ConfirmedCases:
    def __init__(self, readings: ReadingService, datasets: DatasetService, accounts: AccountService) -> None:
        self.readings = readings
        self.datasets = datasets
        self.accounts = accounts

    def register(self, actor: UserSession, name: str = DEFAULT_NAME, *,
                 progress: Callable[[int, int], None] | None = None) -> DatasetInfo:
        """Check every confirmed reading's image and register the usable ones as a dataset (kind ``readings``)."""
        self.accounts.require(actor, Permission.MANAGE_DATASETS, "dataset")
        name = self.datasets.ensure_name_free(name)
        confirmed = self.readings.confirmed()
        readable: list[Candidate] = []
        digests: list[str] = []
        groups: list[str] = []
        unreadable: list[tuple[str, str]] = []

        def check(reading: ClinicalReading) -> str | None:
            """Why the reading's image cannot be used, or None."""
            return (self.datasets.changed_file_problem(reading.path, reading.digest)
                    or _readability_problem(reading.path, True))

        with ThreadPoolExecutor(max_workers=2) as pool:
            for done, (reading, problem) in enumerate(zip(confirmed, pool.map(check, confirmed), strict=True),
                                                      start=1):
                stored = reading.path.as_posix()
                label = reading.reading.label
                if problem is None and label is not None:
                    readable.append(Candidate(stored, reading.path, label, reading.digest))
                    digests.append(reading.digest)
                    groups.append(_group(reading))
                else:
                    unreadable.append((stored, problem or "not a label"))
                if progress is not None:
                    progress(done, len(confirmed))
        return self.datasets.record(actor, name, "readings", SOURCE, readable, digests, groups, unreadable)

    def latest(self, actor: UserSession) -> DatasetInfo | None:
        """The most recently registered confirmed-cases dataset still registered, or None."""
        query = (select(Dataset.id).where(Dataset.kind == "readings", Dataset.removed.is_(None))
                 .order_by(Dataset.id.desc()).limit(1))
        with self.datasets.store.session() as session:
            dataset_id = session.scalar(query)
        return None if dataset_id is None else self.datasets.get(actor, dataset_id)
