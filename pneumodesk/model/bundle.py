"""A model bundle: a folder with ``model.safetensors`` and ``model_card.json``. Loading checks the weights' sha256."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from .architectures import build_model
from .card import ModelCard
from .errors import BundleIntegrityError, ModelBundleError

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class ModelBundle:
    card: ModelCard
    state_dict: dict[str, torch.Tensor]

    def build(self) -> nn.Module:
        """The network with these weights, in evaluation mode."""
        model = build_model(self.card.architecture)
        try:
            model.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as error:
            raise ModelBundleError(
                f"The weights do not fit architecture {self.card.architecture!r} ({error})."
            ) from None
        return model.eval()

    @classmethod
    def from_model(cls, model: nn.Module, card: ModelCard) -> ModelBundle:
        state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
        parameters = sum(p.numel() for p in model.parameters())
        return cls(card.with_updates(parameters=parameters), state)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write weights then card (the card records the weights' sha256); returns the folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = save_safetensors(self.state_dict, metadata={"architecture": self.card.architecture})
        digest = hashlib.sha256(weights).hexdigest()
        (directory / WEIGHTS_FILE).write_bytes(weights)
        card = self.card.with_updates(weights_sha256=digest)
        (directory / CARD_FILE).write_text(json.dumps(card.to_json_dict(), indent=2) + "\n", encoding="utf-8")
        return directory


def load_bundle(directory: str | os.PathLike[str]) -> ModelBundle:
    """Load and verify a bundle. Raises ``ModelBundleError`` (or ``BundleIntegrityError``) with a plain reason."""
    from pneumodesk.imaging import PREPROCESSING_VERSION

    directory = Path(directory)
    try:
        card_data = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
        weights = (directory / WEIGHTS_FILE).read_bytes()
    except FileNotFoundError as error:
        raise ModelBundleError(
            f"The model bundle in {directory} is incomplete: {Path(error.filename).name} is missing."
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelBundleError(f"The model bundle in {directory} cannot be read ({error}).") from None
    if not isinstance(card_data, dict):
        raise ModelBundleError("The model card is not a JSON object.")
    card = ModelCard.from_json_dict(card_data)
    digest = hashlib.sha256(weights).hexdigest()
    if digest != card.weights_sha256:
        raise BundleIntegrityError(
            "The model weights do not match the checksum in their model card: the file was changed or damaged. "
            "Reinstall the model or ask your administrator."
        )
    if card.preprocessing_version != PREPROCESSING_VERSION:
        raise ModelBundleError(
            f"The model expects preprocessing version {card.preprocessing_version}, but this PneumoDesk uses "
            f"version {PREPROCESSING_VERSION}; update PneumoDesk or use a matching model."
        )
    try:
        state = load_safetensors(weights)
    except SafetensorError as error:
        raise ModelBundleError(f"The weights file is not valid safetensors ({error}).") from None
    return ModelBundle(card, state)
