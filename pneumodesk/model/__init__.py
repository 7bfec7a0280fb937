"""Architectures by name, model bundles (safetensors weights + JSON model card) and the bundled default model."""

from .architectures import architecture_names, build_model
from .bundle import CARD_FILE, WEIGHTS_FILE, ModelBundle, load_bundle
from .card import ModelCard, OperatingPoint
from .default import default_bundle_path
from .errors import BundleIntegrityError, ModelBundleError, ModelError, UnknownArchitectureError
from .ood import OOD_FILE, OUTSIDE_INTENDED_USE, FeatureDistribution, captured_embedding, embed_and_classify

__all__ = [
    "CARD_FILE",
    "OOD_FILE",
    "OUTSIDE_INTENDED_USE",
    "WEIGHTS_FILE",
    "BundleIntegrityError",
    "FeatureDistribution",
    "ModelBundle",
    "ModelBundleError",
    "ModelCard",
    "ModelError",
    "OperatingPoint",
    "UnknownArchitectureError",
    "architecture_names",
    "build_model",
    "captured_embedding",
    "default_bundle_path",
    "embed_and_classify",
    "load_bundle",
]
