"""Fixed point in Z_2^k: no overflow for the configured cohort, stated error bound, compact masked-input bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pneumodesk.federation.secagg import (
    MaskedInput,
    ProtocolViolation,
    QuantisationError,
    QuantisationSpec,
    decode,
    encode,
    flatten_state,
    unflatten_state,
)


def test_word_width_follows_nodes_clip_and_examples() -> None:
    small = QuantisationSpec.for_round(max_nodes=10, clip=1.0, max_examples=10_000)
    assert small.word_bits == 32 and small.bits_needed() <= 32
    # ten times more nodes costs ~3.3 fraction bits at the same word width
    assert QuantisationSpec.for_round(100, 1.0, 10_000).fraction_bits < small.fraction_bits
    with pytest.raises(ValueError, match="more than the 32-bit word"):
        QuantisationSpec(word_bits=32, fraction_bits=20, clip=1.0, max_examples=10_000, max_nodes=10)
    with pytest.raises(QuantisationError, match="cannot be summed"):
        QuantisationSpec.for_round(max_nodes=100_000, clip=1e6, max_examples=2**40)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 10), length=st.integers(1, 40), word_bits=st.sampled_from([32, 64]), data=st.data())
def test_sum_of_encodings_decodes_to_the_weighted_mean_within_the_bound(
    n: int, length: int, word_bits: int, data: st.DataObject
) -> None:
    spec = QuantisationSpec.for_round(max_nodes=n, clip=2.0, max_examples=5_000, word_bits=word_bits)
    updates = [np.array(data.draw(st.lists(st.floats(-2.0, 2.0), min_size=length, max_size=length))) for _ in range(n)]
    counts = [data.draw(st.integers(1, 5_000)) for _ in range(n)]
    total = np.zeros(length + 1, dtype=spec.unsigned)
    for update, count in zip(updates, counts, strict=True):
        total += encode(update, count, spec)
    mean, examples = decode(total, spec)
    expected = sum(u * c for u, c in zip(updates, counts, strict=True)) / sum(counts)
    assert examples == sum(counts)
    assert np.max(np.abs(mean - expected)) <= spec.error_bound * (1 + 1e-9) + 1e-12


def test_extreme_values_at_full_cohort_do_not_wrap() -> None:
    spec = QuantisationSpec.for_round(max_nodes=7, clip=1.0, max_examples=1000)
    total = np.zeros(3, dtype=spec.unsigned)
    for _ in range(7):
        total += encode(np.array([1.0, -1.0]), 1000, spec)
    mean, count = decode(total, spec)
    assert count == 7000 and mean.tolist() == [1.0, -1.0]


def test_values_are_clipped_and_bad_inputs_refused() -> None:
    spec = QuantisationSpec.for_round(max_nodes=3, clip=0.5, max_examples=10)
    mean, _ = decode(encode(np.array([3.0, -3.0]), 2, spec), spec)
    assert mean.tolist() == [0.5, -0.5]
    with pytest.raises(QuantisationError, match="NaN"):
        encode(np.array([np.nan]), 1, spec)
    with pytest.raises(QuantisationError, match="example count"):
        encode(np.array([0.1]), 11, spec)


def test_masked_input_travels_as_raw_little_endian_words() -> None:
    words = np.arange(5, dtype=np.uint32) * 0x01020304
    wire = MaskedInput(round_id="r", node_id="hospital-a", words=words).to_bytes()
    assert wire.endswith(words.astype("<u4").tobytes()) and len(wire) == 21 + 1 + 10 + 20
    back = MaskedInput.from_bytes(wire)
    assert (back.round_id, back.node_id) == ("r", "hospital-a") and np.array_equal(back.words, words)
    with pytest.raises(ProtocolViolation, match="length"):
        MaskedInput.from_bytes(wire[:-1])
    with pytest.raises(ProtocolViolation, match="not a masked input"):
        MaskedInput.from_bytes(b"X" * len(wire))


def test_state_dict_flattens_and_restores() -> None:
    state = {"b": np.arange(3, dtype=np.float32), "a": np.ones((2, 2), dtype=np.float32), "n": np.array(7, np.int64)}
    vector, layout = flatten_state(state)
    assert vector.size == 8 and [name for name, _, _ in layout] == ["a", "b", "n"]
    restored = unflatten_state(vector, layout)
    for name, value in state.items():
        assert restored[name].dtype == value.dtype and np.array_equal(restored[name], value)
