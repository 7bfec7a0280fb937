"""Shamir t-of-n sharing: any t shares give the secret back; t − 1 shares say nothing about it."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pneumodesk.federation.secagg import ReconstructionFailed
from pneumodesk.federation.secagg.shamir import PRIME, _lagrange_at, reconstruct, split


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 12), data=st.data())
def test_any_t_shares_reconstruct_the_secret(n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n))
    secret = data.draw(st.binary(min_size=32, max_size=32))
    shares = split(secret, t, list(range(1, n + 1)))
    subset = data.draw(st.lists(st.sampled_from(sorted(shares)), min_size=t, max_size=n, unique=True))
    assert reconstruct({x: shares[x] for x in subset}, t) == secret


def test_every_t_subset_reconstructs_and_no_t_minus_one_subset_does() -> None:
    secret, n, t = os.urandom(32), 6, 4
    shares = split(secret, t, list(range(1, n + 1)))
    for subset in itertools.combinations(shares, t):
        assert reconstruct({x: shares[x] for x in subset}, t) == secret
    for subset in itertools.combinations(shares, t - 1):
        with pytest.raises(ReconstructionFailed):
            reconstruct({x: shares[x] for x in subset}, t)
        # Interpolating t − 1 shares as if they were enough gives some other value, not the secret.
        assert _lagrange_at({x: shares[x] for x in subset}, 0) != int.from_bytes(secret, "big")


@settings(max_examples=20, deadline=None)
@given(secret=st.binary(min_size=32, max_size=32), other=st.binary(min_size=32, max_size=32), t=st.integers(2, 8))
def test_t_minus_one_shares_are_consistent_with_any_secret(secret: bytes, other: bytes, t: int) -> None:
    """Information-theoretic hiding: any other secret has a sharing polynomial through the same t − 1 shares."""
    shares = split(secret, t, list(range(1, t + 1)))
    known = {x: shares[x] for x in range(1, t)}  # t − 1 shares
    # The degree t − 1 polynomial through (0, other) and the known shares exists and is unique: its share at x = t
    # completes a valid t-sharing of ``other`` that agrees with everything the t − 1 holders saw.
    completing = _lagrange_at({0: int.from_bytes(other, "big"), **known}, t)
    assert reconstruct({**known, t: completing}, t) == other


def test_a_wrong_share_beyond_the_threshold_is_detected() -> None:
    shares = split(os.urandom(32), 3, [1, 2, 3, 4, 5])
    shares[4] = (shares[4] + 1) % PRIME
    with pytest.raises(ReconstructionFailed, match="do not agree"):
        reconstruct(shares, 3)
