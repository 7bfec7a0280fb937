"""What a clinician searches for (``StudyQuery``) and what comes back (``SeriesRow``): one row per series.

Invariants: patient attributes (``patient_id``, ``patient_name``, ``birth_date``) live only in these in-memory rows,
for the screen; ``used_fields()`` names which filters were set (never their values), which is all the audit log
sees. Modalities default to CR and DX; a date range is inclusive and either end may be open.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from .errors import PacsSettingsError

DEFAULT_MODALITIES = ("CR", "DX")


@dataclass(frozen=True)
class StudyQuery:
    patient_id: str = ""
    patient_name: str = ""  # DICOM wildcards allowed: DOE* matches Doe^Jane
    accession: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    modalities: tuple[str, ...] = DEFAULT_MODALITIES
    body_part: str = ""
    limit: int = 500

    def validated(self) -> StudyQuery:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise PacsSettingsError("The start date is after the end date.")
        modalities = tuple(m.strip().upper() for m in self.modalities if m.strip()) or DEFAULT_MODALITIES
        if not 1 <= self.limit <= 10_000:
            raise PacsSettingsError("Ask for between 1 and 10 000 results.")
        return StudyQuery(self.patient_id.strip(), self.patient_name.strip(), self.accession.strip(), self.date_from,
                          self.date_to, modalities, self.body_part.strip().upper(), self.limit)

    def date_range(self) -> str:
        """DICOM range matching: ``20240101-20240131``, ``20240101-``, ``-20240131`` or ""."""
        if not self.date_from and not self.date_to:
            return ""
        start = self.date_from.strftime("%Y%m%d") if self.date_from else ""
        end = self.date_to.strftime("%Y%m%d") if self.date_to else ""
        return start if start == end else f"{start}-{end}"

    def used_fields(self) -> list[str]:
        """Names of the filters set, for the audit log: never the values typed."""
        named = {"patient_id": self.patient_id, "patient_name": self.patient_name, "accession": self.accession,
                 "date": self.date_range(), "body_part": self.body_part}
        return [key for key, value in named.items() if value]

    def matching_keys(self, modality: str) -> dict[str, str]:
        """Attribute keyword → matching value for a series-level search in one modality (empty: return it)."""
        return {
            "PatientID": self.patient_id, "PatientName": self.patient_name, "AccessionNumber": self.accession,
            "StudyDate": self.date_range(), "Modality": modality, "BodyPartExamined": self.body_part,
        }


#: Attributes asked for (return keys) beyond the matching ones.
RETURN_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "StudyDescription", "SeriesDescription", "PatientBirthDate",
               "StudyTime", "NumberOfSeriesRelatedInstances", "SeriesNumber")


@dataclass(frozen=True)
class SeriesRow:
    study_uid: str
    series_uid: str
    patient_id: str = field(repr=False)
    patient_name: str = field(repr=False)
    study_date: str
    accession: str = field(repr=False)
    modality: str
    body_part: str
    description: str
    instances: int | None  # None when the PACS did not say

    @classmethod
    def of(cls, dataset: Dataset) -> SeriesRow:
        def text(keyword: str) -> str:
            value = dataset.get(keyword)
            return "" if value is None else str(value).strip()

        count = text("NumberOfSeriesRelatedInstances")
        description = text("SeriesDescription") or text("StudyDescription")
        return cls(text("StudyInstanceUID"), text("SeriesInstanceUID"), text("PatientID"),
                   text("PatientName").replace("^", " ").strip(), text("StudyDate"), text("AccessionNumber"),
                   text("Modality"), text("BodyPartExamined"), description, int(count) if count.isdigit() else None)


def merge_rows(rows: list[SeriesRow], limit: int) -> list[SeriesRow]:
    """One row per series (several modality searches may overlap), newest study first, at most ``limit``."""
    unique = {row.series_uid: row for row in rows if row.series_uid}
    ordered = sorted(unique.values(), key=lambda row: (row.study_date, row.study_uid, row.series_uid), reverse=True)
    return ordered[:limit]
