"""The password or bearer token of a PACS connection, in the OS keyring (never in the node store, a file or a log)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .errors import PacsSettingsError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

KEYRING_SERVICE = "PneumoDesk PACS"


class PacsSecrets:
    """One secret per connection name. ``backend``: a keyring backend; None asks ``keyring.get_keyring()`` each use."""

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self._backend = backend

    def backend(self) -> KeyringBackend:
        if self._backend is not None:
            return self._backend
        import keyring

        return keyring.get_keyring()

    def get(self, connection: str) -> str:
        """The secret, or "" when none is stored."""
        try:
            return str(self.backend().get_password(KEYRING_SERVICE, connection) or "")
        except Exception as error:  # keyring backends raise their own types (locked, D-Bus gone, ...)
            raise PacsSettingsError(f"The OS keyring could not be read ({type(error).__name__}); unlock it and "
                                    "try again.") from None

    def set(self, connection: str, secret: str) -> None:
        try:
            self.backend().set_password(KEYRING_SERVICE, connection, secret)
        except Exception as error:
            raise PacsSettingsError(f"The OS keyring refused to store the PACS password "
                                    f"({type(error).__name__}).") from None

    def delete(self, connection: str) -> None:
        with contextlib.suppress(Exception):  # already gone, or no keyring: nothing to forget
            self.backend().delete_password(KEYRING_SERVICE, connection)
