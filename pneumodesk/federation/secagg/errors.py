"""Typed secure-aggregation errors; ``str(error)`` is a plain-language reason an operator or admin can act on."""

from __future__ import annotations

from ..errors import FederationError


class SecAggError(FederationError):
    """A secure-aggregation round cannot go on as asked."""


class ProtocolViolation(SecAggError):
    """A message arrived in the wrong phase, from the wrong node, or does not fit the round."""


class KeySubstitutionDetected(SecAggError):
    """A node's advertised round keys are not signed by that node's enrolled identity key."""


class TooFewSurvivors(SecAggError):
    """Fewer nodes than the threshold remain; the round fails and nothing about any update is revealed."""


class UnmaskRequestRefused(SecAggError):
    """A node refuses an unmasking request that could reveal an individual update."""


class ConsistencyCheckFailed(SecAggError):
    """The coordinator told the nodes different stories of who survived (Bonawitz et al.'s ConsistencyCheck)."""


class ShareDecryptionFailed(SecAggError):
    """An encrypted share was changed, misaddressed or replayed from another round."""


class ReconstructionFailed(SecAggError):
    """The revealed shares do not agree with each other or with the advertised keys."""


class QuantisationError(SecAggError):
    """An update cannot be encoded within the round's fixed-point range."""
