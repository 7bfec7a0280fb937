"""The JSON model card that travels with every set of weights."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np
from scipy.special import expit

from .errors import ModelBundleError


@dataclass(frozen=True)
class OperatingPoint:
    """A decision threshold on the calibrated probability, with what it achieved on validation data."""

    threshold: float
    sensitivity: float
    specificity: float
    description: str = ""


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    architecture: str
    input_size: int
    preprocessing_version: str
    temperature: float  # calibrated probability = sigmoid(logit / temperature + logit_bias)
    operating_points: dict[str, OperatingPoint]
    default_operating_point: str
    validation: dict[str, Any]
    training: dict[str, Any]
    intended_use: str
    limitations: list[str]
    created: str
    logit_bias: float = 0.0
    weights_sha256: str = ""
    parameters: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # {"file": "ood.safetensors", "sha256": ..., "method": ..., "threshold": ..., ...}; empty: no such check.
    out_of_distribution: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> ModelCard:
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - data.keys())
        if missing:
            raise ModelBundleError(f"The model card is incomplete: missing {', '.join(missing)}.")
        values = {key: value for key, value in data.items() if key in known}
        try:
            values["operating_points"] = {
                name: OperatingPoint(**point) for name, point in data["operating_points"].items()
            }
            card = cls(**values)
        except (TypeError, AttributeError) as error:
            raise ModelBundleError(f"The model card is malformed ({error}).") from None
        if card.default_operating_point not in card.operating_points:
            raise ModelBundleError("The model card's default operating point is not one of its operating points.")
        return card

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of pneumonia for raw network logits."""
        scaled = np.asarray(logits, dtype=np.float64) / self.temperature + self.logit_bias
        return expit(scaled)

    def operating_point(self, name: str | None) -> tuple[str, OperatingPoint]:
        """(name, point); ``None`` means the card's default. Unknown names raise ``ModelBundleError``."""
        chosen = name or self.default_operating_point
        if chosen not in self.operating_points:
            known = ", ".join(sorted(self.operating_points))
            raise ModelBundleError(f"Unknown operating point {chosen!r}; this model has: {known}.")
        return chosen, self.operating_points[chosen]

    def with_updates(self, **changes: Any) -> ModelCard:
        return type(self)(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})
