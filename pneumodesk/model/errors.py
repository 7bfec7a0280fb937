"""Typed errors about models and model bundles."""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError


class ModelError(PneumoDeskError):
    """A model or model bundle problem; ``str(error)`` is a plain-language reason."""


class UnknownArchitectureError(ModelError):
    """The architecture name is not in this node's registry."""


class ModelBundleError(ModelError):
    """The bundle is missing, incomplete or does not fit this version of PneumoDesk."""


class BundleIntegrityError(ModelBundleError):
    """The weights file does not match the sha256 recorded in its model card."""
