"""Content-addressed blob store for weights: one file per sha256, safetensors only, verified on every read."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from pneumodesk.federation.errors import WeightsIntegrityError
from pneumodesk.federation.tensors import sha256_hex, tensor_signature

from .errors import NotFound

_SHA256 = re.compile(r"^[0-9a-f]{64}$")



def write_atomically(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so that it is either absent or complete and on disk (temp file, fsync, rename).

    Once on disk the file's pages are dropped from the page cache: blobs are written for durability and read back only
    after a restart (hot model versions are served from memory), and reusing those pages for the next upload costs
    the kernel far less than claiming fresh ones."""
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

class BlobStore:
    """Blobs live at ROOT/ab/abcdef… (the sha256 of their bytes).

    Invariants: a blob is written to a temporary file, flushed and renamed, so a crash never leaves a partial blob
    under its final name; ``put`` refuses bytes that are not safetensors; ``get`` re-hashes and refuses a blob whose
    bytes no longer match its name.
    """

    def __init__(self, root: Path, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._cache: OrderedDict[str, bytes | memoryview] = OrderedDict()  # verified, immutable blobs (model versions)
        self._cache_bytes = cache_bytes
        self._cache_lock = threading.Lock()

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise NotFound("No such blob.")
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes | memoryview, digest: str | None = None, *, cache: bool = False) -> str:
        """Store ``data``; ``digest`` may be passed when the caller just hashed these very bytes."""
        tensor_signature(data)  # raises WeightsIntegrityError unless the bytes are safetensors
        digest = digest or sha256_hex(data)
        if cache:
            self._remember(digest, data)
        path = self._path(digest)
        if path.exists():
            return digest
        write_atomically(path, data)
        return digest

    def get(self, sha256: str, *, cache: bool = False) -> bytes | memoryview:
        """The blob's bytes, re-hashed after reading; ``cache`` keeps them in memory (for often-read model versions).
        Cached blobs are what ``put`` was given (bytes or a read-only view): never to be changed."""
        with self._cache_lock:
            cached = self._cache.get(sha256)
            if cached is not None:
                self._cache.move_to_end(sha256)
                return cached
        try:
            data = self._path(sha256).read_bytes()
        except FileNotFoundError:
            raise NotFound("The requested weights are not in the blob store.") from None
        if sha256_hex(data) != sha256:
            raise WeightsIntegrityError(f"Blob {sha256[:12]}… is damaged: its bytes no longer match its sha256.")
        if cache:
            self._remember(sha256, data)
        return data

    def _remember(self, sha256: str, data: bytes | memoryview) -> None:
        if len(data) > self._cache_bytes:
            return
        with self._cache_lock:
            self._cache[sha256] = data
            self._cache.move_to_end(sha256)
            while sum(len(v) for v in self._cache.values()) > self._cache_bytes:
                self._cache.popitem(last=False)

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()

    def delete(self, sha256: str) -> None:
        with self._cache_lock:
            self._cache.pop(sha256, None)
        self._path(sha256).unlink(missing_ok=True)
