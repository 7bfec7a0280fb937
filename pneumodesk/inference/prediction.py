"""What a prediction says, in the terms a clinician reads."""

from __future__ import annotations

from dataclasses import dataclass

PNEUMONIA = "PNEUMONIA"
NORMAL = "NORMAL"


@dataclass(frozen=True)
class Prediction:
    probability: float  # calibrated probability of pneumonia, in [0, 1]
    label: str  # PNEUMONIA when probability ≥ threshold, else NORMAL
    operating_point: str
    threshold: float
    model_version: str

    @property
    def is_pneumonia(self) -> bool:
        return self.label == PNEUMONIA
