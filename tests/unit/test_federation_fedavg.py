"""FedAvg and weights on the wire: exact weighted means, safetensors only, sha256 checked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pneumodesk.federation import (
    IncompatibleUpdateError,
    WeightsIntegrityError,
    check_compatible,
    fedavg,
    sha256_hex,
    state_dict_from_bytes,
    state_dict_to_bytes,
)


def _state(seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((4, 3)) * scale).astype(np.float32)
    return {"w": w, "b": rng.standard_normal(3).astype(np.float32)}


def test_weighted_mean_matches_a_float64_reference():
    states, counts = [_state(s) for s in range(3)], [10, 30, 60]
    result = fedavg(zip(states, counts, strict=True))
    for name in ("w", "b"):
        reference = sum(s[name].astype(np.float64) * n for s, n in zip(states, counts, strict=True)) / 100
        np.testing.assert_allclose(result[name], reference.astype(np.float32), rtol=0, atol=1e-7)
        assert result[name].dtype == np.float32


def test_dyadic_inputs_give_bit_exact_means_in_any_order():
    states = [{"w": np.full((2, 2), v, dtype=np.float32)} for v in (1.0, 3.0, -5.0)]
    counts = [1, 2, 5]
    expected = np.full((2, 2), (1 + 6 - 25) / 8, dtype=np.float32)
    for order in ([0, 1, 2], [2, 0, 1]):
        result = fedavg([(states[i], counts[i]) for i in order])
        np.testing.assert_array_equal(result["w"], expected)


def test_torch_tensors_and_integer_buffers_are_accepted():
    states = [{"w": torch.ones(2) * v, "steps": torch.tensor([v], dtype=torch.int64)} for v in (2, 4)]
    result = fedavg([(states[0], 1), (states[1], 3)])
    np.testing.assert_array_equal(result["w"], np.array([3.5, 3.5], dtype=np.float32))
    assert result["steps"].dtype == np.int64 and result["steps"][0] == 4  # rint(3.5) rounds half to even


def test_mismatched_updates_and_bad_counts_are_refused():
    with pytest.raises(IncompatibleUpdateError):
        fedavg([(_state(0), 1), ({"w": np.zeros((4, 3), np.float32)}, 1)])
    with pytest.raises(IncompatibleUpdateError):
        fedavg([(_state(0), 1), ({"w": np.zeros((3, 3), np.float32), "b": np.zeros(3, np.float32)}, 1)])
    with pytest.raises(ValueError, match="positive"):
        fedavg([(_state(0), 0)])


def test_safetensors_round_trip_checks_sha256_and_refuses_other_formats():
    data = state_dict_to_bytes(_state(1), {"architecture": "x"})
    back = state_dict_from_bytes(data, sha256_hex(data))
    np.testing.assert_array_equal(back["w"], _state(1)["w"])
    with pytest.raises(WeightsIntegrityError, match="sha256"):
        state_dict_from_bytes(data, "0" * 64)
    with pytest.raises(WeightsIntegrityError):
        state_dict_from_bytes(b"\x80\x04pickle")


def test_check_compatible_names_the_offending_tensor():
    reference = state_dict_to_bytes(_state(0))
    check_compatible(state_dict_to_bytes(_state(5)), reference)
    with pytest.raises(IncompatibleUpdateError, match="'w'"):
        check_compatible(state_dict_to_bytes({"w": np.zeros((4, 4), np.float32), "b": np.zeros(3, np.float32)}),
                         reference)
    with pytest.raises(WeightsIntegrityError):
        check_compatible(b"short", reference)
