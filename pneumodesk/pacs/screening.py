"""Which retrieved instances PneumoDesk may use: single-frame CR/DX chest images; every other one is skipped with
its reason, in the words the file readers use (``pneumodesk.imaging``)."""

from __future__ import annotations

from pydicom.dataset import Dataset

from pneumodesk.imaging import OutsideIntendedUseError
from pneumodesk.imaging.intended_use import CHEST_RADIOGRAPH_MODALITIES, check_chest_radiograph


def skip_reason(dataset: Dataset) -> str | None:
    """None when the instance is a single-frame CR or DX image that does not say it is of another body part; else
    why it is skipped. Reads only technical attributes (never a patient attribute)."""
    sop_class = dataset.get("SOPClassUID")
    kind = str(getattr(sop_class, "name", "") or sop_class or "unknown kind")
    if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
        return f"It holds no image (it is a {kind} object)."
    frames_text = str(dataset.get("NumberOfFrames") or "1").strip()
    frames = int(frames_text) if frames_text.isdigit() else 0
    if frames != 1:
        return f"It is a multi-frame object ({frames_text} frames); PneumoDesk reads single radiographs."
    modality = str(dataset.get("Modality") or "").strip().upper()
    if modality not in CHEST_RADIOGRAPH_MODALITIES:
        return f"It is not a radiograph (modality {modality or 'not given'}); PneumoDesk reads CR and DX images."
    try:
        check_chest_radiograph(modality, str(dataset.get("BodyPartExamined") or ""), str(sop_class or ""), kind)
    except OutsideIntendedUseError as error:
        return str(error)
    return None
