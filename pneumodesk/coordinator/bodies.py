"""Reading request bodies (model updates are tens of megabytes) with as little work after the last byte as possible.

Invariants: the body lands in one buffer sized from Content-Length when the client announced it (no growing and
re-copying; numpy memory, so huge pages where the kernel allows), and its sha256 is computed chunk by chunk as it
arrives, so the digest is ready when the body is; the digest is of exactly the bytes returned. Size limits are not
enforced here: ``BodySizeLimit`` has already refused announced or streamed bodies over the endpoint's limit before
the handler reads.

Buffers of large bodies may come from a ``BufferPool``: every round brings updates of one size, and a buffer used
before is memory the kernel need not find and zero again (on a virtual machine that is most of the coordinator's
kernel time). A buffer goes back to the pool only when the handler is finished with it: the service copies what it
keeps (the running sum, the blob file) and holds no view into the body once it has answered.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from starlette.requests import Request

from .errors import InvalidInput
from .safetensors_io import byte_buffer


@dataclass(frozen=True)
class ReceivedBody:
    data: bytearray | memoryview  # writable; nobody changes it after it was received
    sha256: str  # hex digest of ``data``


class BufferPool:
    """Idle byte buffers by size, at most ``max_bytes`` of them; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._idle: dict[int, list[memoryview]] = {}
        self._idle_bytes = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> memoryview:
        with self._lock:
            buffers = self._idle.get(size)
            if buffers:
                self._idle_bytes -= size
                return buffers.pop()
        return byte_buffer(size)

    def give(self, buffer: memoryview) -> None:
        """Return a buffer nobody uses any more (dropped when the pool is full)."""
        with self._lock:
            if self._idle_bytes + len(buffer) <= self.max_bytes:
                self._idle.setdefault(len(buffer), []).append(buffer)
                self._idle_bytes += len(buffer)

    @property
    def idle_bytes(self) -> int:
        return self._idle_bytes


async def receive_body(request: Request, pool: BufferPool | None = None) -> ReceivedBody:
    """The whole body and its sha256, hashed while it streams in; an announced body's buffer comes from ``pool``
    when one is given (the caller gives it back, see ``pooled_body``)."""
    digest = hashlib.sha256()
    announced = request.headers.get("content-length")
    if announced is None or not announced.isdigit():  # chunked transfer: grow as it comes
        grown = bytearray()
        async for chunk in request.stream():
            digest.update(chunk)
            grown += chunk
        return ReceivedBody(grown, digest.hexdigest())
    size = int(announced)
    data, filled = (pool.take(size) if pool is not None else byte_buffer(size)), 0
    try:
        async for chunk in request.stream():
            end = filled + len(chunk)
            if end > len(data):
                raise InvalidInput("The request body is longer than its Content-Length header says.")
            data[filled:end] = chunk
            digest.update(chunk)
            filled = end
        if filled != len(data):
            raise InvalidInput("The request body ended before the length its Content-Length header announced.")
    except BaseException:
        if pool is not None:
            pool.give(data)
        raise
    return ReceivedBody(data, digest.hexdigest())


@asynccontextmanager
async def pooled_body(request: Request, pool: BufferPool) -> AsyncIterator[ReceivedBody]:
    """``receive_body`` from ``pool``; the buffer goes back when the block ends, so the block must not let a view
    into it escape."""
    body = await receive_body(request, pool)
    try:
        yield body
    finally:
        if isinstance(body.data, memoryview):
            pool.give(body.data)
