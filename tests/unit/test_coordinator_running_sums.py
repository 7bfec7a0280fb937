"""Running FedAvg sums and zero-copy safetensors: the same numbers as ``federation.fedavg``, bit for bit."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import load as load_safetensors

from pneumodesk.coordinator.running_sums import BLOCK, RoundSums, RunningSum
from pneumodesk.coordinator.safetensors_io import tensor_views, write_safetensors
from pneumodesk.federation import fedavg, state_dict_to_bytes
from pneumodesk.federation.errors import IncompatibleUpdateError, WeightsIntegrityError


def _states(count: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"conv.weight": rng.standard_normal((3, BLOCK // 3 + 7)).astype(np.float32),  # spans two blocks
             "bn.running_mean": rng.standard_normal(5).astype(np.float32),
             "bn.num_batches_tracked": np.array([rng.integers(0, 1000)], dtype=np.int64),
             "head.bias": rng.standard_normal(1).astype(np.float64)} for _ in range(count)]


def test_running_sum_equals_fedavg_bit_for_bit_when_added_in_the_same_order():
    states, counts = _states(5), [3, 1, 700, 2, 45]
    running = RunningSum()
    for index, (state, count) in enumerate(zip(states, counts, strict=True)):
        views = tensor_views(state_dict_to_bytes(state))
        assert running.add(f"node-{index}", views, count) is True
    result = load_safetensors(bytes(running.write({"architecture": "x"})))
    expected = fedavg(zip(states, counts, strict=True))
    assert result.keys() == expected.keys() and running.total_examples == sum(counts)
    for name in expected:
        assert result[name].dtype == expected[name].dtype and result[name].shape == expected[name].shape
        np.testing.assert_array_equal(result[name], expected[name])


def test_each_key_counts_once_and_mismatched_updates_are_refused():
    first, second = _states(2, seed=1)
    running = RunningSum()
    assert running.add("a", first, 2) and not running.add("a", second, 5)
    assert running.total_examples == 2
    with pytest.raises(IncompatibleUpdateError):
        running.add("b", {**second, "conv.weight": second["conv.weight"][:, :-1]}, 1)
    with pytest.raises(IncompatibleUpdateError):
        running.add("b", {k: v for k, v in second.items() if k != "head.bias"}, 1)
    with pytest.raises(ValueError, match="positive"):
        running.add("b", second, 0)
    assert running.included == {"a"}
    with pytest.raises(ValueError, match="no updates"):
        RunningSum().write()


def test_a_closed_round_has_no_sums_and_is_never_recreated():
    sums = RoundSums()
    running = sums.get(7)
    assert sums.get(7) is running
    sums.close(7)
    assert sums.get(7) is None and sums.get(8) is not None


def test_sums_of_rounds_finished_elsewhere_are_dropped_but_newer_rounds_kept():
    sums = RoundSums()
    kept, newer = sums.get(2), sums.get(5)
    sums.get(1)
    sums.retain({2}, newest=4)  # round 1 finished (e.g. in another worker); round 5 opened after the caller looked
    assert sums.get(1) is None and sums.get(2) is kept and sums.get(5) is newer


def test_views_share_memory_and_are_read_only():
    state = _states(1)[0]
    data = bytearray(state_dict_to_bytes(state))
    views = tensor_views(data)
    for name, array in state.items():
        np.testing.assert_array_equal(views[name], array)
        assert not views[name].flags.writeable
    assert np.shares_memory(views["conv.weight"], np.frombuffer(data, dtype=np.uint8))


def _with_header(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@pytest.mark.parametrize("header, body", [
    ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4),  # data shorter than the header says
    ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),  # shape and size disagree
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
      "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 8),  # overlapping tensors
    ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),  # a gap
    ({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8),  # unsupported dtype
    ({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}, b""),  # negative dimension
])
def test_malformed_safetensors_are_refused(header, body):
    with pytest.raises(WeightsIntegrityError):
        tensor_views(_with_header(header, body))


def test_written_files_load_with_the_safetensors_library_and_are_aligned():
    layout = {"b": (np.dtype(np.float32), (2, 3)), "a": (np.dtype(np.int64), ()), "c": (np.dtype(np.float16), (0,))}

    def fill(name: str, out: np.ndarray) -> None:
        out[...] = np.arange(out.size).reshape(out.shape) + (10 if name == "a" else 0)

    data = bytes(write_safetensors(layout, fill, {"architecture": "pneumonet-m"}))
    assert (8 + struct.unpack("<Q", data[:8])[0]) % 8 == 0
    loaded = load_safetensors(data)
    np.testing.assert_array_equal(loaded["b"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert loaded["a"] == 10 and loaded["a"].dtype == np.int64 and loaded["c"].shape == (0,)
