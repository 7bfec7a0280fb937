"""``Predictor``: calibrated probability, decision at an operating point, and Grad-CAM heat maps, on the CPU.

When the bundle carries out-of-distribution statistics, an input whose features lie beyond their threshold gets
``OutsideIntendedUseError`` instead of a probability (DESIGN.md, invariant 10); a bundle without them refuses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from pneumodesk.imaging import OutsideIntendedUseError, XRay, preprocess
from pneumodesk.model import (
    OUTSIDE_INTENDED_USE,
    ModelBundle,
    captured_embedding,
    default_bundle_path,
    embed_and_classify,
    load_bundle,
)

from .grad_cam import grad_cam
from .prediction import NORMAL, PNEUMONIA, Prediction


class Predictor:
    """Runs one model bundle. Deterministic: the same X-ray always gives the same probability and heat map."""

    def __init__(self, bundle: ModelBundle, operating_point: str | None = None, *, model: nn.Module | None = None):
        """``model`` lets several predictors share one network already built from ``bundle``."""
        self.bundle = bundle
        self.card = bundle.card
        self.operating_point_name, self.operating_point = self.card.operating_point(operating_point)
        if model is None:
            model = bundle.build()
            for parameter in model.parameters():
                parameter.requires_grad_(False)  # inference only; Grad-CAM needs activation gradients, not weights'
        self.model = model

    @classmethod
    def from_path(cls, path: str | os.PathLike[str] | None = None, operating_point: str | None = None) -> Predictor:
        """Load a bundle folder (default: the bundled default model) and verify its sha256."""
        return cls(load_bundle(Path(path) if path else default_bundle_path()), operating_point)

    @property
    def model_version(self) -> str:
        return self.card.version

    def with_operating_point(self, name: str) -> Predictor:
        """The same model deciding at another of its operating points (the network is shared, not copied)."""
        return Predictor(self.bundle, name, model=self.model)

    def decide(self, probability: float) -> Prediction:
        threshold = self.operating_point.threshold
        label = PNEUMONIA if probability >= threshold else NORMAL
        return Prediction(float(probability), label, self.operating_point_name, threshold, self.model_version)

    def inputs(self, xrays: Sequence[XRay]) -> torch.Tensor:
        return torch.from_numpy(np.stack([preprocess(xray, self.card.input_size) for xray in xrays]))

    def predict(self, xray: XRay) -> Prediction:
        return self.predict_batch([xray])[0]

    def predict_batch(self, xrays: Sequence[XRay]) -> list[Prediction]:
        if not xrays:
            return []
        return self.predict_inputs(self.inputs(xrays))

    def predict_inputs(self, inputs: torch.Tensor) -> list[Prediction]:
        """Predictions for already preprocessed inputs of shape (n, 1, S, S). Raises ``OutsideIntendedUseError`` if
        any of them is outside the model's intended use (``assess_inputs`` answers per input instead)."""
        answers = self.assess_inputs(inputs)
        for answer in answers:
            if isinstance(answer, OutsideIntendedUseError):
                raise answer
        return [answer for answer in answers if isinstance(answer, Prediction)]

    def assess_inputs(self, inputs: torch.Tensor) -> list[Prediction | OutsideIntendedUseError]:
        """Per input, in order: its prediction, or the refusal when it lies outside the model's intended use."""
        ood = self.bundle.ood
        with torch.inference_mode():
            if ood is None:
                logits = self.model(inputs).reshape(-1).numpy()
                outside = np.zeros(len(logits), dtype=bool)
            else:
                features, logit_tensor = embed_and_classify(self.model, inputs)
                logits = logit_tensor.numpy()
                outside = ood.outside(features.numpy())
        return [
            OutsideIntendedUseError(OUTSIDE_INTENDED_USE) if refused else self.decide(probability)
            for probability, refused in zip(self.card.calibrate(logits), outside, strict=True)
        ]

    def predict_with_heatmap(self, xray: XRay) -> tuple[Prediction, np.ndarray]:
        """Prediction plus a Grad-CAM map of the regions that raised the pneumonia score.

        The map is float32 in [0, 1] with the X-ray's own shape (height, width): preprocessing only rescales, so
        the network's square input maps back onto the image by resizing. It shows influence, not localisation.
        Raises ``OutsideIntendedUseError`` (no probability, no map) for an input outside the intended use.
        """
        # Weights are frozen, so the graph must start at the input for gradients to reach the activations.
        inputs = self.inputs([xray]).requires_grad_(True)
        layer = self.model.grad_cam_layer
        if not isinstance(layer, nn.Module):
            raise TypeError(f"{type(self.model).__name__}.grad_cam_layer must be a module, not {type(layer).__name__}")
        ood = self.bundle.ood
        capture: AbstractContextManager[list[torch.Tensor]] = (
            captured_embedding(self.model) if ood is not None else nullcontext([])
        )
        with capture as embeddings:
            maps, outputs = grad_cam(self.model, layer, inputs)
        logit = outputs.reshape(-1).numpy()
        if ood is not None and bool(ood.outside(embeddings[-1].numpy())[0]):
            raise OutsideIntendedUseError(OUTSIDE_INTENDED_USE)
        prediction = self.decide(float(self.card.calibrate(logit)[0]))
        heatmap = Image.fromarray(maps[0].astype(np.float32), mode="F").resize(
            (xray.width, xray.height), Image.Resampling.BILINEAR
        )
        return prediction, np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)

    def heatmap(self, xray: XRay) -> np.ndarray:
        return self.predict_with_heatmap(xray)[1]
