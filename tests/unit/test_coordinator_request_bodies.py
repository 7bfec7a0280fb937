"""Request bodies read into one buffer and hashed as they arrive: exact bytes, exact digest, framing checked; large
buffers reused from a bounded pool only once the handler is done with them."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from starlette.requests import Request

from pneumodesk.coordinator.bodies import BufferPool, pooled_body, receive_body
from pneumodesk.coordinator.errors import InvalidInput


def _request(chunks: list[bytes], content_length: int | None) -> Request:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    messages = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
                for i, chunk in enumerate(chunks)]

    async def receive() -> dict:
        return messages.pop(0)

    return Request({"type": "http", "method": "PUT", "path": "/", "headers": headers}, receive)


BODY = bytes(range(256)) * 1000
CHUNKS = [BODY[i : i + 65536] for i in range(0, len(BODY), 65536)]


@pytest.mark.parametrize("announced", [len(BODY), None], ids=["content-length", "chunked"])
def test_body_and_digest_are_those_of_the_bytes_sent(announced):
    received = asyncio.run(receive_body(_request(CHUNKS, announced)))
    assert bytes(received.data) == BODY
    assert received.sha256 == hashlib.sha256(BODY).hexdigest()


def test_an_empty_body_is_read_as_empty():
    received = asyncio.run(receive_body(_request([b""], 0)))
    assert received.data == bytearray() and received.sha256 == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(("announced", "message"), [(len(BODY) - 1, "longer"), (len(BODY) + 1, "ended before")])
def test_a_body_that_disagrees_with_its_content_length_is_refused(announced, message):
    with pytest.raises(InvalidInput, match=message):
        asyncio.run(receive_body(_request(CHUNKS, announced)))


def _address(buffer: memoryview) -> int:
    import numpy as np

    return np.frombuffer(buffer, dtype=np.uint8).ctypes.data


def test_a_pooled_buffer_is_reused_only_after_its_handler_finished():
    pool = BufferPool(max_bytes=4 * len(BODY))

    async def handle() -> tuple[int, int]:
        async with pooled_body(_request(CHUNKS, len(BODY)), pool) as first:
            assert bytes(first.data) == BODY and pool.idle_bytes == 0
            async with pooled_body(_request(CHUNKS, len(BODY)), pool) as second:  # in use: not handed out twice
                assert _address(second.data) != _address(first.data)
            address = _address(first.data)
        async with pooled_body(_request(list(reversed(CHUNKS)), len(BODY)), pool) as third:
            assert third.sha256 == hashlib.sha256(b"".join(reversed(CHUNKS))).hexdigest()
            return address, _address(third.data)

    released, reused = asyncio.run(handle())
    assert reused == released  # the most recently freed buffer, overwritten with the new body (checked above)
    assert pool.idle_bytes == 2 * len(BODY)


def test_the_pool_keeps_at_most_its_limit_and_takes_back_a_refused_body():
    pool = BufferPool(max_bytes=len(BODY))
    first, second = pool.take(len(BODY)), pool.take(len(BODY))
    pool.give(first)
    pool.give(second)  # over the limit: dropped
    assert pool.idle_bytes == len(BODY) and pool.take(len(BODY)) is first

    refusing = BufferPool(max_bytes=4 * len(BODY))
    with pytest.raises(InvalidInput):
        asyncio.run(receive_body(_request(CHUNKS, len(BODY) + 1), refusing))
    assert refusing.idle_bytes == len(BODY) + 1  # the refused body's buffer came back
