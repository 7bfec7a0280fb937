"""The intended use, as far as a file's own header can tell: a DICOM must say it is a chest radiograph.

Invariant (DESIGN.md, invariant 10): a DICOM whose Modality is present and not CR or DX, or whose BodyPartExamined
is present and not the chest, or (Modality absent) whose SOP class is an image type other than a radiograph (a
secondary capture, an ultrasound), is refused with ``OutsideIntendedUseError`` before any pixel is decoded, so it never
gets a probability. An absent or empty attribute cannot tell, and is let through, as PNG and JPEG files are.
"""

from __future__ import annotations

import numpy as np

from .errors import OutsideIntendedUseError
from .shown import shown_value

# A chest radiograph is grey. A colour file may still carry one (the training images are RGB JPEGs with grey
# content) or add small coloured marks (annotations, rulers), so a picture is refused only when more than
# COLOURED_SHARE_LIMIT of its pixels are clearly coloured (channels apart by more than CHROMA_LIMIT of the range;
# JPEG's chroma rounding on grey content stays far below it).
CHROMA_LIMIT = 0.12
COLOURED_SHARE_LIMIT = 0.05
COLOUR_PICTURE = (
    "Outside the model's intended use: this is a colour picture, and chest radiographs are grey, so PneumoDesk "
    "gives no probability for it."
)

CHEST_RADIOGRAPH_MODALITIES = frozenset({"CR", "DX"})
CHEST_BODY_PARTS = frozenset({"CHEST", "THORAX", "LUNG"})
RADIOGRAPH_SOP_CLASSES = frozenset({
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
})


def coloured_share(rgb: np.ndarray) -> float:
    """The share of pixels of ``rgb`` (h, w, 3; uint8 or unit-range floats) whose channels differ by more than
    ``CHROMA_LIMIT``."""
    values = np.asarray(rgb)
    scale = 255.0 if values.dtype == np.uint8 else 1.0
    spread = values.max(axis=-1).astype(np.float32) - values.min(axis=-1).astype(np.float32)
    return float(np.mean(spread > CHROMA_LIMIT * scale)) if spread.size else 0.0


def check_grey_content(rgb: np.ndarray) -> None:
    """Refuse a colour picture (see ``COLOURED_SHARE_LIMIT``); ``rgb`` may be a reduced copy of the image."""
    if coloured_share(rgb) > COLOURED_SHARE_LIMIT:
        raise OutsideIntendedUseError(COLOUR_PICTURE)


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
