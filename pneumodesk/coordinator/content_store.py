"""Content-addressed storage: bytes filed under their sha256, written atomically and re-hashed on every read.

The coordinator keeps two kinds of content this way, on the one ``FileContentStore`` core: model weights and updates
(``blobs.BlobStore``, which adds a safetensors check and an in-memory cache) and secure-aggregation messages
(``secure_rounds``). ``ContentStore`` is the contract every store keeps (tests/unit/test_content_store_contract.py).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

from .errors import InvalidInput, NotFound

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

Bytes = bytes | bytearray | memoryview


class ContentMissing(NotFound):
    """No content is stored under this digest (or the digest is not a lower-case sha256 at all)."""


class ContentDamaged(InvalidInput):
    """The stored bytes no longer hash to the digest they are filed under: refused, never returned."""


class ContentStore(Protocol):
    """Bytes by their sha256.

    Contract: ``put`` returns the sha256 of the bytes and is idempotent; ``get`` returns exactly the bytes put under
    that digest or raises ``ContentDamaged`` when they changed on disk, ``ContentMissing`` when there are none; a
    crash or failure during ``put`` never leaves partial bytes visible under the digest.
    """

    def put(self, data: Bytes, digest: str | None = None) -> str: ...

    def get(self, sha256: str) -> bytes | memoryview: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...


def sha256_of(data: Bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomically(path: Path, data: Bytes) -> None:
    """Write ``data`` to ``path`` so that it is either absent or complete and on disk (temp file, fsync, rename).

    Once on disk the file's pages are dropped from the page cache: content is written for durability and read back
    only after a restart (hot model versions are served from memory), and reusing those pages for the next upload
    costs the kernel far less than claiming fresh ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if hasattr(os, "posix_fadvise"):  # Linux and most Unixes; elsewhere the cache keeps them, harmlessly
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class FileContentStore:
    """Content at ROOT/ab/abcdef… (the sha256 of its bytes); see ``ContentStore`` for the contract.

    ``noun`` and ``missing`` word the errors for what is stored (e.g. "Blob", "The requested weights are not in the
    blob store."); ``damaged`` is the ``ContentDamaged`` subclass raised for bytes that no longer match their name.
    """

    def __init__(self, root: Path, *, noun: str = "Content", missing: str | None = None,
                 damaged: type[ContentDamaged] = ContentDamaged) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._noun = noun
        self._missing = missing or f"{noun} is not in the store."
        self._damaged = damaged

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ContentMissing(f"No such {self._noun.lower()}.")
        return self.root / sha256[:2] / sha256

    def put(self, data: Bytes, digest: str | None = None) -> str:
        """Store ``data``; ``digest`` may be passed when the caller just hashed these very bytes."""
        digest = digest or sha256_of(data)
        path = self._path(digest)
        if not path.exists():
            write_atomically(path, data)
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            data = self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise ContentMissing(self._missing) from None
        if sha256_of(data) != sha256:
            raise self._damaged(f"{self._noun} {sha256[:12]}… is damaged: its bytes no longer match its sha256.")
        return data

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)
