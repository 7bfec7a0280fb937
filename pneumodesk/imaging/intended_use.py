"""The intended use, as far as a file's own header can tell: a DICOM must say it is a chest radiograph.

Invariant (DESIGN.md, invariant 10): a DICOM whose Modality is present and not CR or DX, or whose BodyPartExamined
is present and not the chest, or (Modality absent) whose SOP class is an image type other than a radiograph (a
secondary capture, an ultrasound), is refused with ``OutsideIntendedUseError`` before any pixel is decoded, so it never
gets a probability. An absent or empty attribute cannot tell, and is let through, as PNG and JPEG files are.
"""

from __future__ import annotations

from .errors import OutsideIntendedUseError
from .shown import shown_value

CHEST_RADIOGRAPH_MODALITIES = frozenset({"CR", "DX"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG"})
RADIOGRAPH_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
})


def check_chest_radiograph(modality: str, body_part: str, sop_class: str = "", sop_class_name: str = "") -> None:
    """Refuse a header that says it is something other than a chest radiograph. Values are compared stripped and
    upper-cased; an empty value means "not said"."""
    if not modality.strip() and sop_class.strip() and sop_class.strip() not in RADIOGRAPH_SOP_CLASSES:
        raise OutsideIntendedUseError(
            f"This is not a chest radiograph (it is a {shown_value(sop_class_name or sop_class, 60)} object); "
            "PneumoDesk gives a probability only for chest X-rays."
        )
    modality = modality.strip().upper()
    body_part = body_part.strip().upper()
    if modality and modality not in CHEST_RADIOGRAPH_MODALITIES:
        raise OutsideIntendedUseError(
            f"This is not a chest radiograph (modality {shown_value(modality)}); PneumoDesk gives a probability "
            "only for chest X-rays (CR or DX)."
        )
    if body_part and body_part not in CHEST_BODY_PARTS:
        raise OutsideIntendedUseError(
            f"This is not a chest radiograph (body part {shown_value(body_part)}); PneumoDesk gives a probability "
            "only for chest X-rays."
        )
