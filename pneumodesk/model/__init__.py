"""Architectures by name, model bundles (safetensors weights + JSON model card) and the bundled default model.

Names are loaded lazily (PEP 562), so importing a small pure module such as ``pneumodesk.model.curves`` or
``pneumodesk.model.errors`` (the GUI does, at start) does not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pneumodesk.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .architectures import architecture_names, build_model
    from .bundle import CARD_FILE, WEIGHTS_FILE, ModelBundle, load_bundle
    from .card import ModelCard, OperatingPoint
    from .default import default_bundle_path
    from .errors import BundleIntegrityError, ModelBundleError, ModelError, UnknownArchitectureError
    from .ood import OOD_FILE, OUTSIDE_INTENDED_USE, FeatureDistribution, captured_embedding, embed_and_classify

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("architecture_names", "build_model"), "architectures"),
    **dict.fromkeys(("CARD_FILE", "WEIGHTS_FILE", "ModelBundle", "load_bundle"), "bundle"),
    **dict.fromkeys(("ModelCard", "OperatingPoint"), "card"),
    "default_bundle_path": "default",
    **dict.fromkeys(("BundleIntegrityError", "ModelBundleError", "ModelError", "UnknownArchitectureError"), "errors"),
    **dict.fromkeys(("OOD_FILE", "OUTSIDE_INTENDED_USE", "FeatureDistribution", "captured_embedding",
                     "embed_and_classify"), "ood"),
}

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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
