"""Local performance monitoring: a model's sensitivity and specificity on a hospital's confirmed cases, each with a
Wilson score interval, against the figures its model card promises.

Invariant: drift is reported only when the card's figure lies above the upper end of the local 95 % Wilson interval
— the local figure is below the card's by more than its own uncertainty — so a handful of cases never raises a
warning by chance alone more often than about 2.5 % of the time per figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95 % by default); (0, 1) with no trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class LocalFigure:
    """One figure (sensitivity or specificity) measured here, its Wilson interval and the card's promise."""

    name: str
    correct: int
    cases: int
    card: float

    @property
    def value(self) -> float | None:
        return self.correct / self.cases if self.cases else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.cases)

    @property
    def drifted(self) -> bool:
        """The card's figure is above the local interval's upper end."""
        return self.cases > 0 and self.card > self.interval[1]

    def sentence(self) -> str:
        if self.value is None:
            return f"{self.name}: no confirmed cases yet (card {self.card:.3f})"
        low, high = self.interval
        return (f"{self.name} {self.value:.3f} on {self.cases} confirmed case(s) (95 % Wilson interval "
                f"{low:.3f}–{high:.3f}); the model card says {self.card:.3f}")


@dataclass(frozen=True)
class LocalPerformance:
    sensitivity: LocalFigure
    specificity: LocalFigure
    model_version: str
    refused: int  # confirmed images that changed, vanished or could not be read

    @property
    def drifted(self) -> bool:
        return self.sensitivity.drifted or self.specificity.drifted

    def warning(self) -> str | None:
        """A plain sentence when a figure drifted below the card by more than its interval, else None."""
        drifted = [f for f in (self.sensitivity, self.specificity) if f.drifted]
        if not drifted:
            return None
        return ("Warning: the model in use does worse on this month's confirmed cases than its model card says — "
                + "; ".join(f.sentence() for f in drifted) + ". Consider recalibrating on the confirmed cases.")


def local_performance(labels: np.ndarray, decisions: np.ndarray, card_sensitivity: float, card_specificity: float,
                      model_version: str, refused: int = 0) -> LocalPerformance:
    """Figures from confirmed ``labels`` (1 = pneumonia) and the model's ``decisions`` (True = pneumonia)."""
    labels = np.asarray(labels, dtype=np.int64)
    decisions = np.asarray(decisions, dtype=bool)
    pneumonia, normal = labels == 1, labels == 0
    return LocalPerformance(
        LocalFigure("Sensitivity", int(decisions[pneumonia].sum()), int(pneumonia.sum()), float(card_sensitivity)),
        LocalFigure("Specificity", int((~decisions[normal]).sum()), int(normal.sum()), float(card_specificity)),
        model_version, int(refused))
