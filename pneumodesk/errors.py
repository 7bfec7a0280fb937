"""The root of every error a person using PneumoDesk can meet.

Invariant: ``str(error)`` (also ``error.user_message``) is a sentence a clinician, an admin or an operator can act
on, and carries no password, token, key, path of a patient's image or anything read from one. Interfaces catch
``PneumoDeskError`` to show that sentence and lose no work; anything else is a bug and goes to the log.
"""

from __future__ import annotations

__all__ = ["PneumoDeskError"]


class PneumoDeskError(Exception):
    """An error with a message for people; subclasses say which layer raised it and may carry a typed ``code``."""

    @property
    def user_message(self) -> str:
        return str(self)
