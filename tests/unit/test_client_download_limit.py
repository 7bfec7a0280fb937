"""A coordinator cannot fill the node's memory: a model download is read only up to the size the plan's
architecture implies in this node's own registry (plus a header margin), every other answer up to a small cap; a
larger body is a plain ``ProtocolError`` and the node stops reading at the limit."""

from __future__ import annotations

import io

import pytest

from pneumodesk.client.errors import ProtocolError
from pneumodesk.client.model_size import largest_weights_size_limit, weights_size_limit
from pneumodesk.client.transport import DEFAULT_MAX_BODY
from pneumodesk.federation.messages import SHA256_HEADER
from pneumodesk.federation.tensors import sha256_hex, state_dict_to_bytes
from tests.hostile_messages import StaticTokens, node_home
from tests.lying_coordinator import Answer, lying_client

HUGE = 64 * 1024 * 1024


class CountingZeros(io.RawIOBase):
    """A body of ``size`` zero bytes that counts how much of it was read (nothing is held in memory)."""

    def __init__(self, size: int) -> None:
        self.size, self.read_bytes = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        count = min(len(buffer), self.size - self.read_bytes)
        buffer[:count] = bytes(count)
        self.read_bytes += count
        return count


def test_a_real_model_fits_its_architectures_limit():
    from pneumodesk.model import build_model

    data = state_dict_to_bytes({k: v.numpy() for k, v in build_model("pneumonet-tiny").state_dict().items()})
    assert len(data) <= weights_size_limit("pneumonet-tiny") < len(data) + 128 * 1024
    assert weights_size_limit("pneumonet-tiny") < largest_weights_size_limit()


@pytest.mark.parametrize("declare_length", [False, True])
def test_a_model_body_larger_than_the_plans_architecture_is_not_read(declare_length: bool):
    body = CountingZeros(HUGE)
    headers = {SHA256_HEADER: "0" * 64} | ({"Content-Length": str(HUGE)} if declare_length else {})
    with node_home() as node:
        client = lying_client(node.ca_path, lambda _request: Answer(headers=headers, stream=body),
                              tokens=StaticTokens())
        with pytest.raises(ProtocolError, match=r"larger than the .* this node accepts"):
            client.weights(1, architecture="pneumonet-tiny")
    assert body.read_bytes <= weights_size_limit("pneumonet-tiny") + 1024 * 1024


def test_a_json_answer_is_capped_too():
    body = CountingZeros(HUGE)
    with node_home() as node:
        client = lying_client(node.ca_path, lambda _request: Answer(stream=body), tokens=StaticTokens())
        with pytest.raises(ProtocolError, match="larger than"):
            client.models()
    assert body.read_bytes <= DEFAULT_MAX_BODY + 1024 * 1024


def test_a_model_within_the_limit_still_arrives():
    from pneumodesk.model import build_model

    data = state_dict_to_bytes({k: v.numpy() for k, v in build_model("pneumonet-tiny").state_dict().items()})
    with node_home() as node:
        client = lying_client(node.ca_path, lambda _request: Answer(data, 200, {SHA256_HEADER: sha256_hex(data)}),
                              tokens=StaticTokens())
        assert client.weights(1, sha256_hex(data), architecture="pneumonet-tiny") == data
