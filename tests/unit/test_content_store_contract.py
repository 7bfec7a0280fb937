"""The contract every content-addressed store of the coordinator keeps, run against each implementation.

``FileContentStore`` is the one storage implementation (secure-aggregation messages use it as it is);
``BlobStore`` layers the weights' safetensors check and memory cache on it, so it runs the same contract.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from pneumodesk.coordinator.blobs import BlobStore
from pneumodesk.coordinator.content_store import ContentDamaged, ContentMissing, ContentStore, FileContentStore


def _weights(seed: int) -> bytes:
    return save({"w": np.full(16, seed, dtype=np.float32)})


def _message(seed: int) -> bytes:
    return f'{{"message": {seed}}}'.encode()


IMPLEMENTATIONS: dict[str, tuple[Callable[[Path], ContentStore], Callable[[int], bytes]]] = {
    "files": (FileContentStore, _message),
    "blobs": (BlobStore, _weights),
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store_and_payload(request, tmp_path) -> tuple[ContentStore, Callable[[int], bytes], Path]:
    make, payload = IMPLEMENTATIONS[request.param]
    root = tmp_path / request.param
    return make(root), payload, root


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_returns_the_sha256_and_get_returns_the_same_bytes(store_and_payload):
    store, payload, _root = store_and_payload
    data = payload(1)
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert bytes(store.get(digest)) == data
    assert store.exists(digest)


def test_put_again_is_idempotent(store_and_payload):
    store, payload, root = store_and_payload
    data = payload(2)
    first = store.put(data)
    stored = _files(root)
    assert store.put(data) == first == store.put(memoryview(data), first)
    assert _files(root) == stored == [root / first[:2] / first]
    assert bytes(store.get(first)) == data


def test_bytes_damaged_on_disk_are_refused(store_and_payload):
    store, payload, root = store_and_payload
    digest = store.put(payload(3))
    (path,) = _files(root)
    damaged = bytearray(path.read_bytes())
    damaged[-1] ^= 0xFF
    path.write_bytes(damaged)
    with pytest.raises(ContentDamaged, match="damaged"):
        store.get(digest)


def test_a_missing_or_malformed_digest_is_a_typed_error(store_and_payload):
    store, payload, _root = store_and_payload
    absent = hashlib.sha256(payload(4)).hexdigest()
    with pytest.raises(ContentMissing):
        store.get(absent)
    assert not store.exists(absent)
    for malformed in ("", "../../etc/passwd", absent.upper(), absent[:-1]):
        with pytest.raises(ContentMissing):
            store.get(malformed)


def test_a_failed_write_leaves_nothing_under_the_final_name(store_and_payload, monkeypatch):
    store, payload, root = store_and_payload
    data = payload(5)

    def disk_failure(_descriptor: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", disk_failure)
    with pytest.raises(OSError, match="disk full"):
        store.put(data)
    monkeypatch.undo()
    assert _files(root) == []  # neither a partial file under the digest nor a left-over temporary file
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(ContentMissing):
        store.get(digest)
    assert store.put(data) == digest  # and a later put stores it whole
    assert bytes(store.get(digest)) == data


def test_deleted_content_is_gone(store_and_payload):
    store, payload, _root = store_and_payload
    digest = store.put(payload(6))
    store.delete(digest)
    store.delete(digest)  # deleting twice is harmless
    assert not store.exists(digest)
    with pytest.raises(ContentMissing):
        store.get(digest)


def test_damaged_weights_are_also_a_weights_integrity_error(tmp_path):
    from pneumodesk.federation.errors import WeightsIntegrityError

    store = BlobStore(tmp_path)
    digest = store.put(_weights(7))
    (path,) = _files(tmp_path)
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(WeightsIntegrityError, match=f"Blob {digest[:12]}… is damaged"):
        store.get(digest)
