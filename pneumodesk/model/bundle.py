"""A model bundle: a folder with ``model.safetensors`` and ``model_card.json``, and optionally ``ood.safetensors``
(the out-of-distribution statistics, referenced from the card). Loading checks every file's sha256.

Bundles written before the out-of-distribution check existed have no such file and no card entry: they load and
predict as before, without refusing unusual images.
"""

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
from .ood import OOD_FILE, FeatureDistribution

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model_card.json"


@dataclass(frozen=True)
class ModelBundle:
    card: ModelCard
    state_dict: dict[str, torch.Tensor]
    ood: FeatureDistribution | None = None  # None: the bundle predicts every image it can read

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
    def from_model(cls, model: nn.Module, card: ModelCard, ood: FeatureDistribution | None = None) -> ModelBundle:
        state = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in model.state_dict().items()}
        parameters = sum(p.numel() for p in model.parameters())
        return cls(card.with_updates(parameters=parameters), state, ood)

    def with_ood(self, ood: FeatureDistribution | None, **description: object) -> ModelBundle:
        """The same weights with other out-of-distribution statistics; ``description`` goes into the card entry."""
        entry = {key: value for key, value in self.card.out_of_distribution.items() if key not in ("sha256",)}
        return ModelBundle(self.card.with_updates(out_of_distribution={**entry, **description}), self.state_dict, ood)

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write weights, OOD statistics, then the card (which records their sha256s); returns the folder."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights = save_safetensors(self.state_dict, metadata={"architecture": self.card.architecture})
        digest = hashlib.sha256(weights).hexdigest()
        (directory / WEIGHTS_FILE).write_bytes(weights)
        ood_entry: dict[str, object] = {}
        if self.ood is not None:
            statistics = self.ood.to_bytes()
            (directory / OOD_FILE).write_bytes(statistics)
            ood_entry = {**self.card.out_of_distribution, "file": OOD_FILE,
                         "sha256": hashlib.sha256(statistics).hexdigest(),
                         "method": self.ood.method, "threshold": self.ood.threshold}
        else:
            (directory / OOD_FILE).unlink(missing_ok=True)
        card = self.card.with_updates(weights_sha256=digest, out_of_distribution=ood_entry)
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
    return ModelBundle(card, state, _load_ood(directory, card))


def _load_ood(directory: Path, card: ModelCard) -> FeatureDistribution | None:
    """The statistics the card references (checked against their sha256), or None when it references none."""
    entry = card.out_of_distribution
    if not entry:
        return None
    try:
        name, expected, threshold, method = entry["file"], entry["sha256"], float(entry["threshold"]), entry["method"]
    except (KeyError, TypeError, ValueError):
        raise ModelBundleError("The model card's out_of_distribution entry is incomplete.") from None
    if Path(str(name)).name != name:
        raise ModelBundleError("The model card's out_of_distribution file must be a plain file name in the bundle.")
    try:
        data = (directory / name).read_bytes()
    except OSError:
        raise ModelBundleError(
            f"The model bundle in {directory} is incomplete: {name} (its out-of-distribution statistics) is missing."
        ) from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise BundleIntegrityError(
            "The model's out-of-distribution statistics do not match the checksum in their model card: the file was "
            "changed or damaged. Reinstall the model or ask your administrator."
        )
    return FeatureDistribution.from_bytes(data, threshold, str(method))
