"""``Predictor``: calibrated probability, decision at an operating point, and Grad-CAM heat maps, on the CPU."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from pneumodesk.imaging import XRay, preprocess
from pneumodesk.model import ModelBundle, default_bundle_path, load_bundle

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
        """Predictions for already preprocessed inputs of shape (n, 1, S, S)."""
        with torch.inference_mode():
            logits = self.model(inputs).reshape(-1).numpy()
        return [self.decide(p) for p in self.card.calibrate(logits)]

    def predict_with_heatmap(self, xray: XRay) -> tuple[Prediction, np.ndarray]:
        """Prediction plus a Grad-CAM map of the regions that raised the pneumonia score.

        The map is float32 in [0, 1] with the X-ray's own shape (height, width): preprocessing only rescales, so
        the network's square input maps back onto the image by resizing. It shows influence, not localisation.
        """
        # Weights are frozen, so the graph must start at the input for gradients to reach the activations.
        inputs = self.inputs([xray]).requires_grad_(True)
        layer = self.model.grad_cam_layer
        if not isinstance(layer, nn.Module):
            raise TypeError(f"{type(self.model).__name__}.grad_cam_layer must be a module, not {type(layer).__name__}")
        maps, outputs = grad_cam(self.model, layer, inputs)
        logit = outputs.reshape(-1).numpy()
        prediction = self.decide(float(self.card.calibrate(logit)[0]))
        heatmap = Image.fromarray(maps[0].astype(np.float32), mode="F").resize(
            (xray.width, xray.height), Image.Resampling.BILINEAR
        )
        return prediction, np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)

    def heatmap(self, xray: XRay) -> np.ndarray:
        return self.predict_with_heatmap(xray)[1]
