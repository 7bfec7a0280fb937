"""Reviewer verdicts (agree / disagree with the model), kept on this workstation in a small JSON file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

AGREE = "agree"
DISAGREE = "disagree"
VERDICTS = (AGREE, DISAGREE)


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes: the key a verdict is stored under."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class VerdictStore:
    """Verdicts keyed by the image file's sha256, so a renamed or moved copy keeps its verdict.

    Invariants: each entry holds only ``verdict`` and ``time`` (UTC, ISO 8601), never a path, name or pixel; the
    file is rewritten atomically on every change, so closing or crashing loses nothing already recorded.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, dict[str, str]] = self._read()

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        entries = data.get("verdicts", {}) if isinstance(data, dict) else {}
        return {
            key: {"verdict": value["verdict"], "time": str(value.get("time", ""))}
            for key, value in entries.items()
            if isinstance(value, dict) and value.get("verdict") in VERDICTS
        }

    def get(self, sha256: str) -> str | None:
        entry = self._entries.get(sha256)
        return entry["verdict"] if entry else None

    def time(self, sha256: str) -> str | None:
        entry = self._entries.get(sha256)
        return entry["time"] if entry else None

    def set(self, sha256: str, verdict: str | None) -> None:
        """Record (or with ``None`` remove) the verdict for one image."""
        if verdict is None:
            self._entries.pop(sha256, None)
        elif verdict in VERDICTS:
            self._entries[sha256] = {"verdict": verdict, "time": datetime.now(UTC).isoformat(timespec="seconds")}
        else:
            raise ValueError(f"unknown verdict {verdict!r}")
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": 1, "verdicts": self._entries}, indent=1, sort_keys=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".verdicts-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(payload)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
