"""Knowing when not to answer: how far an image's penultimate features lie from the training images' features.

``FeatureDistribution`` holds the class means and a shared (shrunk) precision matrix of the network's penultimate
features on its training images; an image's score is its smallest squared Mahalanobis distance to a class mean
(one mean when fitted pooled). Above the bundle's threshold the input is "outside the model's intended use" and gets
no probability (DESIGN.md, invariant 10). The statistics travel in the bundle as ``ood.safetensors``, referenced
with its sha256 from the model card's ``out_of_distribution`` entry; a bundle without one has no such check.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load as load_numpy
from safetensors.numpy import save as save_numpy
from torch import nn

from .architectures import PneumoNet
from .errors import ModelBundleError

OOD_FILE = "ood.safetensors"
OUTSIDE_INTENDED_USE = (
    "Outside the model's intended use: this image does not look like the chest X-rays the model was trained on "
    "(for example another body part, another modality, a photograph or an unusual rendering), so PneumoDesk gives "
    "no probability for it."
)


@dataclass(frozen=True)
class FeatureDistribution:
    """Class means (k, d) and a shared precision matrix (d, d) of penultimate features; ``threshold`` on the score."""

    means: np.ndarray
    precision: np.ndarray
    threshold: float
    method: str  # "mahalanobis-class" (one mean per class, tied covariance) or "mahalanobis-pooled"

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Smallest squared Mahalanobis distance to a class mean, per row of ``features`` (n, d); float64."""
        features = np.asarray(features, dtype=np.float64)
        distances = []
        for mean in self.means:
            centred = features - mean
            distances.append(np.einsum("nd,de,ne->n", centred, self.precision, centred))
        return np.min(np.stack(distances), axis=0)

    def outside(self, features: np.ndarray) -> np.ndarray:
        """True where an image is beyond the threshold (or its features are not finite)."""
        scores = self.scores(features)
        return ~np.isfinite(scores) | (scores > self.threshold)

    def to_bytes(self) -> bytes:
        return save_numpy(
            {"means": np.ascontiguousarray(self.means, dtype=np.float64),
             "precision": np.ascontiguousarray(self.precision, dtype=np.float64)},
            metadata={"method": self.method},
        )

    @classmethod
    def from_bytes(cls, data: bytes, threshold: float, method: str) -> FeatureDistribution:
        try:
            arrays = load_numpy(data)
            means, precision = arrays["means"], arrays["precision"]
        except (SafetensorError, KeyError) as error:
            raise ModelBundleError(f"The out-of-distribution statistics are not readable ({error}).") from None
        if means.ndim != 2 or precision.shape != (means.shape[1], means.shape[1]):
            raise ModelBundleError("The out-of-distribution statistics have inconsistent shapes.")
        return cls(means, precision, float(threshold), method)


def embed_and_classify(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(penultimate features (n, d), logits (n,)) in one pass; the logits equal ``model(inputs)``."""
    if not isinstance(model, PneumoNet):
        raise ModelBundleError(f"{type(model).__name__} has no penultimate features to check inputs against.")
    features = model.embed(inputs)
    return features, model.classify(features).reshape(-1)


@contextmanager
def captured_embedding(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """While open, every forward pass of ``model`` appends its penultimate features (detached) to the yielded list:
    the features of a pass that also computes something else (a Grad-CAM map), at no extra cost."""
    if not isinstance(model, PneumoNet):
        raise ModelBundleError(f"{type(model).__name__} has no penultimate features to check inputs against.")
    captured: list[torch.Tensor] = []

    def keep(_module: nn.Module, args: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        captured.append(args[0].detach())

    handle = model.head[2].register_forward_hook(keep)  # the dropout's input is the pooled feature vector
    try:
        yield captured
    finally:
        handle.remove()
