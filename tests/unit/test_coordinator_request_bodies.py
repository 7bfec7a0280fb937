"""Request bodies read into one buffer and hashed as they arrive: exact bytes, exact digest, framing checked."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from starlette.requests import Request

from pneumodesk.coordinator.bodies import receive_body
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
