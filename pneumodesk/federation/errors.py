"""Typed errors shared by the coordinator and the nodes; ``str(error)`` is a plain-language reason."""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError


class FederationError(PneumoDeskError):
    """A federation problem a user or operator can act on."""


class PlanError(FederationError):
    """A training plan is malformed or outside what this software supports."""


class WeightsIntegrityError(FederationError):
    """Weights are not valid safetensors or do not match their announced sha256."""


class IncompatibleUpdateError(FederationError):
    """A model update does not have the tensors (names, shapes, dtypes) of the round's model."""
