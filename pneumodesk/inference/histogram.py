"""The worklist's probabilities as a histogram, with the operating point's threshold: plain figures for a chart.

Invariant: bins are equal-width on [0, 1]; an image with probability p is in the bin with ``low ≤ p < high`` (the
last bin includes 1.0), the same rule ``ProbabilityHistogram.bin_of`` applies when the chart filters the worklist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

HISTOGRAM_BINS = 10


@dataclass(frozen=True)
class ProbabilityHistogram:
    edges: tuple[float, ...]  # bins + 1 increasing edges from 0.0 to 1.0
    counts: tuple[int, ...]
    threshold: float | None  # the operating point's; None when no model is loaded

    @property
    def bins(self) -> int:
        return len(self.counts)

    def bin_range(self, index: int) -> tuple[float, float]:
        return self.edges[index], self.edges[index + 1]

    def bin_of(self, probability: float) -> int:
        return bin_index(probability, self.bins)

    def contains(self, index: int, probability: float) -> bool:
        return self.bin_of(probability) == index


def bin_index(probability: float, bins: int = HISTOGRAM_BINS) -> int:
    return int(min(max(int(probability * bins), 0), bins - 1))


def probability_histogram(probabilities: Iterable[float], threshold: float | None,
                          bins: int = HISTOGRAM_BINS) -> ProbabilityHistogram:
    counts = [0] * bins
    for p in probabilities:
        counts[bin_index(float(p), bins)] += 1
    edges = tuple(float(e) for e in np.linspace(0.0, 1.0, bins + 1))
    return ProbabilityHistogram(edges, tuple(counts), threshold)


__all__ = ["HISTOGRAM_BINS", "ProbabilityHistogram", "bin_index", "probability_histogram"]
