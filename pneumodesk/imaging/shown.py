"""Values read from a file, made safe to quote inside a plain-language message."""

from __future__ import annotations

import string

_PRINTABLE = set(string.ascii_letters + string.digits + " ._-^/+:")


def shown_value(value: object, limit: int = 24) -> str:
    """``value`` as short printable ASCII: a damaged or hostile header must not put control characters, line
    breaks or kilobytes of text into an error row."""
    text = "".join(character if character in _PRINTABLE else "?" for character in str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
