"""Typed errors of PACS access, each a sentence a clinician or admin can act on (never a patient attribute)."""

from __future__ import annotations

from pneumodesk.errors import PneumoDeskError


class PacsError(PneumoDeskError):
    """Base of every PACS error; ``str(error)`` is a plain sentence."""


class PacsSettingsError(PacsError):
    """A connection's settings are incomplete or invalid (no URL, a port out of range, an unknown connection)."""


class PacsUnreachable(PacsError):
    """Nothing answered at the PACS's address (down, wrong host or port, firewall, TLS failure)."""


class PacsRefused(PacsError):
    """The PACS answered but refused us: wrong credentials, or our AE title is not registered there."""


class PacsFailure(PacsError):
    """The PACS accepted the request but reported a failure while answering it."""
