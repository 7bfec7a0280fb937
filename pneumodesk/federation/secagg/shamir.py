"""Shamir t-of-n secret sharing of 32-byte secrets over GF(p), p = 2**521 - 1 (a Mersenne prime > 2**256).

Invariants: a share is (x, y) with 1 ≤ x ≤ n (the holder's 1-based position in the round's roster) and y < p; any t
shares with distinct x give back the secret; t − 1 shares are consistent with every possible secret (each secret
value has exactly one degree t − 1 polynomial through them), so they reveal nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence

from .errors import ReconstructionFailed

PRIME = 2**521 - 1
SHARE_BYTES = 66  # ceil(521 / 8)
SECRET_BYTES = 32


def split(secret: bytes, threshold: int, xs: Sequence[int]) -> dict[int, int]:
    """Shares of ``secret`` (32 bytes) for each x in ``xs``, any ``threshold`` of which reconstruct it."""
    if len(secret) != SECRET_BYTES:
        raise ValueError("secrets are 32 bytes")
    if not 1 <= threshold <= len(xs):
        raise ValueError("the threshold must be between 1 and the number of shares")
    if len(set(xs)) != len(xs) or any(not 0 < x < PRIME for x in xs):
        raise ValueError("share positions must be distinct and non-zero")
    coefficients = [int.from_bytes(secret, "big")] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    return {x: _evaluate(coefficients, x) for x in xs}


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    y = 0
    for coefficient in reversed(coefficients):
        y = (y * x + coefficient) % PRIME
    return y


def _lagrange_at(points: Mapping[int, int], at: int) -> int:
    total = 0
    for xi, yi in points.items():
        numerator, denominator = 1, 1
        for xj in points:
            if xj != xi:
                numerator = numerator * (at - xj) % PRIME
                denominator = denominator * (xi - xj) % PRIME
        total = (total + yi * numerator * pow(denominator, -1, PRIME)) % PRIME
    return total


def reconstruct(shares: Mapping[int, int], threshold: int) -> bytes:
    """The secret from at least ``threshold`` shares; every share beyond the first t must lie on the same polynomial.

    Raises ``ReconstructionFailed`` with fewer than t shares, inconsistent shares, or a value that is no 32-byte
    secret (which is what t − 1 honest shares plus a wrong one, or shares of different secrets, produce).
    """
    if len(shares) < threshold:
        raise ReconstructionFailed(f"Only {len(shares)} shares were revealed; {threshold} are needed.")
    xs = sorted(shares)
    basis = {x: shares[x] % PRIME for x in xs[:threshold]}
    for x in xs[threshold:]:
        if _lagrange_at(basis, x) != shares[x] % PRIME:
            raise ReconstructionFailed("The revealed shares do not agree with each other; a node sent a wrong share.")
    value = _lagrange_at(basis, 0)
    if value >= 2 ** (8 * SECRET_BYTES):
        raise ReconstructionFailed("The revealed shares do not reconstruct a valid secret.")
    return value.to_bytes(SECRET_BYTES, "big")


def share_to_bytes(y: int) -> bytes:
    return y.to_bytes(SHARE_BYTES, "big")


def share_from_bytes(data: bytes) -> int:
    if len(data) != SHARE_BYTES:
        raise ReconstructionFailed("A revealed share has the wrong length.")
    y = int.from_bytes(data, "big")
    if y >= PRIME:
        raise ReconstructionFailed("A revealed share is outside the field.")
    return y
