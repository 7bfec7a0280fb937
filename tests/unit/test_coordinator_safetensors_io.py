"""Hostile safetensors headers get the typed integrity error, never another exception (issue 16's corpus has the
same inputs over HTTP; these reach ``tensor_views`` directly, behind the check against the round's model)."""

from __future__ import annotations

import struct

import pytest

from pneumodesk.coordinator.safetensors_io import tensor_views
from pneumodesk.federation.errors import WeightsIntegrityError
from pneumodesk.federation.tensors import safetensors_header, tensor_signature


def _safetensors(header: bytes, data: bytes = b"\0" * 4) -> bytes:
    return struct.pack("<Q", len(header)) + header + data


@pytest.mark.parametrize("offsets", ["[0, Infinity]", "[-Infinity, 4]", "[0, 1e400]", "[0, NaN]"])
def test_non_finite_data_offsets_are_malformed(offsets):
    header = f'{{"w":{{"dtype":"F32","shape":[1],"data_offsets":{offsets}}}}}'.encode()
    with pytest.raises(WeightsIntegrityError):
        tensor_views(_safetensors(header))


@pytest.mark.parametrize("header", [
    b"[" * 50_000,  # deeper than the JSON parser recurses
    b'{"w":{"dtype":"F32","shape":[' + b"9" * 5000 + b'],"data_offsets":[0,4]}}',  # past int's digit limit
    b'{"\xff":1}',
])
def test_unparseable_headers_are_not_json(header):
    with pytest.raises(WeightsIntegrityError):
        safetensors_header(_safetensors(header))


def test_an_infinite_shape_is_malformed():
    with pytest.raises(WeightsIntegrityError):
        tensor_signature(_safetensors(b'{"w":{"dtype":"F32","shape":[Infinity],"data_offsets":[0,4]}}'))
