"""Content-addressed blob store for weights: one file per sha256, safetensors only, verified on every read."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from pneumodesk.federation.errors import WeightsIntegrityError
from pneumodesk.federation.tensors import tensor_signature

from .content_store import ContentDamaged, FileContentStore

Weights = bytes | memoryview


class DamagedWeights(ContentDamaged, WeightsIntegrityError):
    """A stored blob whose bytes no longer match its sha256 (both a store error and a weights-integrity error)."""


class BlobStore:
    """Blobs live at ROOT/ab/abcdef… (the sha256 of their bytes), on a ``FileContentStore``.

    Invariants: a blob is written to a temporary file, flushed and renamed, so a crash never leaves a partial blob
    under its final name; ``put`` refuses bytes that are not safetensors; ``get`` re-hashes and refuses a blob whose
    bytes no longer match its name.
    """

    def __init__(self, root: Path, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self.root = root
        self._files = FileContentStore(root, noun="Blob", missing="The requested weights are not in the blob store.",
                                       damaged=DamagedWeights)
        self._cache: OrderedDict[str, Weights] = OrderedDict()  # verified, immutable blobs (model versions)
        self._cache_bytes = cache_bytes
        self._cache_lock = threading.Lock()

    def put(self, data: Weights, digest: str | None = None, *, cache: bool = False) -> str:
        """Store ``data``; ``digest`` may be passed when the caller just hashed these very bytes."""
        tensor_signature(data)  # raises WeightsIntegrityError unless the bytes are safetensors
        digest = self._files.put(data, digest)
        if cache:
            self._remember(digest, data)
        return digest

    def get(self, sha256: str, *, cache: bool = False) -> Weights:
        """The blob's bytes, re-hashed after reading; ``cache`` keeps them in memory (for often-read model versions).
        Cached blobs are what ``put`` was given (bytes or a read-only view): never to be changed."""
        with self._cache_lock:
            cached = self._cache.get(sha256)
            if cached is not None:
                self._cache.move_to_end(sha256)
                return cached
        data = self._files.get(sha256)
        if cache:
            self._remember(sha256, data)
        return data

    def _remember(self, sha256: str, data: Weights) -> None:
        if len(data) > self._cache_bytes:
            return
        with self._cache_lock:
            self._cache[sha256] = data
            self._cache.move_to_end(sha256)
            while sum(len(v) for v in self._cache.values()) > self._cache_bytes:
                self._cache.popitem(last=False)

    def exists(self, sha256: str) -> bool:
        return self._files.exists(sha256)

    def delete(self, sha256: str) -> None:
        with self._cache_lock:
            self._cache.pop(sha256, None)
        self._files.delete(sha256)
