"""Reading request bodies (model updates are tens of megabytes) with as little work after the last byte as possible.

Invariants: the body lands in one buffer sized from Content-Length when the client announced it (no growing and
re-copying; numpy memory, so huge pages where the kernel allows), and its sha256 is computed chunk by chunk as it
arrives, so the digest is ready when the body is; the digest is of exactly the bytes returned. Size limits are not
enforced here: ``BodySizeLimit`` has already refused announced or streamed bodies over the endpoint's limit before
the handler reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from starlette.requests import Request

from .errors import InvalidInput
from .safetensors_io import byte_buffer


@dataclass(frozen=True)
class ReceivedBody:
    data: bytearray | memoryview  # writable; nobody changes it after it was received
    sha256: str  # hex digest of ``data``


async def receive_body(request: Request) -> ReceivedBody:
    """The whole body and its sha256, hashed while it streams in."""
    digest = hashlib.sha256()
    announced = request.headers.get("content-length")
    if announced is None or not announced.isdigit():  # chunked transfer: grow as it comes
        data = bytearray()
        async for chunk in request.stream():
            digest.update(chunk)
            data += chunk
        return ReceivedBody(data, digest.hexdigest())
    data, filled = byte_buffer(int(announced)), 0
    async for chunk in request.stream():
        end = filled + len(chunk)
        if end > len(data):
            raise InvalidInput("The request body is longer than its Content-Length header says.")
        data[filled:end] = chunk
        digest.update(chunk)
        filled = end
    if filled != len(data):
        raise InvalidInput("The request body ended before the length its Content-Length header announced.")
    return ReceivedBody(data, digest.hexdigest())
