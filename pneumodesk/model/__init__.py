"""Architectures by name, model bundles (safetensors weights + JSON model card) and the bundled default model."""

from .architectures import architecture_names, build_model
from .bundle import CARD_FILE, WEIGHTS_FILE, ModelBundle, load_bundle
from .card import ModelCard, OperatingPoint
from .default import default_bundle_path
from .errors import BundleIntegrityError, ModelBundleError, ModelError, UnknownArchitectureError

__all__ = [
    "CARD_FILE",
    "WEIGHTS_FILE",
    "BundleIntegrityError",
    "ModelBundle",
    "ModelBundleError",
    "ModelCard",
    "ModelError",
    "OperatingPoint",
    "UnknownArchitectureError",
    "architecture_names",
    "build_model",
    "default_bundle_path",
    "load_bundle",
]
