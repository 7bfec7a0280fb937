"""Fixed-point encoding of example-weighted updates in Z_2^k, and decoding of their sum.

A node with ``n`` examples encodes each (clipped) coordinate ``w`` as ``n · rint(w · 2^f)`` and appends ``n`` as a
last coordinate, all modulo 2^k (k = 32 or 64, numpy's unsigned wrap-around). The sum over nodes is exact modulo
2^k; it never wraps when ``nodes · max_examples · clip · 2^f < 2^(k−1)`` (checked by ``QuantisationSpec``), so
interpreting the sum as a signed k-bit integer gives Σ nᵢ·rint(wᵢ·2^f) exactly.

Error bound: the decoded weighted mean differs from Σ nᵢ·wᵢ / Σ nᵢ (with each wᵢ clipped to [−clip, clip]) by at
most 2^−(f+1) per coordinate, plus float64 rounding, whatever the node count — each node's rounding error is at most
nᵢ/2 units of 2^−f. Send deltas (local − global weights), not whole weights: a small clip buys fraction bits.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import QuantisationError

_WORDS: dict[int, tuple[type[np.unsignedinteger], type[np.signedinteger]]] = {
    32: (np.uint32, np.int32),
    64: (np.uint64, np.int64),
}


class QuantisationSpec(BaseModel):
    """Fixed-point format every node of a round uses; the coordinator publishes it with the key roster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    word_bits: int = Field(default=32, description="k: arithmetic is modulo 2^k (32 or 64)")
    fraction_bits: int = Field(ge=0, le=52)
    clip: float = Field(gt=0.0, le=1e6, description="each coordinate is clipped to [-clip, clip]")
    max_examples: int = Field(ge=1, le=2**40, description="largest example count a node may declare")
    max_nodes: int = Field(ge=1, le=100_000)

    @model_validator(mode="after")
    def _no_overflow(self) -> QuantisationSpec:
        if self.word_bits not in _WORDS:
            raise ValueError("word_bits must be 32 or 64")
        if self.bits_needed() > self.word_bits:
            raise ValueError(
                f"{self.max_nodes} nodes × {self.max_examples} examples × clip {self.clip} at {self.fraction_bits} "
                f"fraction bits needs {self.bits_needed()} bits, more than the {self.word_bits}-bit word"
            )
        return self

    def bits_needed(self) -> int:
        """Bits (sign included) that the largest possible sum of all nodes' inputs needs."""
        largest = max(self.max_nodes * self.max_examples * math.ceil(self.clip * 2**self.fraction_bits),
                      self.max_nodes * self.max_examples)
        return largest.bit_length() + 1

    @classmethod
    def for_round(cls, max_nodes: int, clip: float, max_examples: int, word_bits: int = 32) -> QuantisationSpec:
        """The finest fixed point (most fraction bits) that cannot overflow a ``word_bits`` word."""
        for fraction_bits in range(52, -1, -1):
            try:
                return cls(word_bits=word_bits, fraction_bits=fraction_bits, clip=clip, max_examples=max_examples,
                           max_nodes=max_nodes)
            except ValueError:
                continue
        raise QuantisationError(
            f"{max_nodes} nodes with up to {max_examples} examples each cannot be summed in {word_bits} bits; "
            "use a 64-bit word, a smaller clip range or a lower example cap."
        )

    @property
    def unsigned(self) -> type[np.unsignedinteger]:
        return _WORDS[self.word_bits][0]

    @property
    def signed(self) -> type[np.signedinteger]:
        return _WORDS[self.word_bits][1]

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    @property
    def error_bound(self) -> float:
        """Largest difference between the decoded mean and the exact weighted mean of clipped inputs."""
        return 2.0 ** -(self.fraction_bits + 1)


def check_input(update: np.ndarray, examples: int, spec: QuantisationSpec) -> np.ndarray:
    """The update as a flat array, after checking the example count and that every value is finite."""
    # ``type(...) is int``, not isinstance: a bool, a float or a numpy integer from untyped code is refused too.
    if type(examples) is not int or not 1 <= examples <= spec.max_examples:
        raise QuantisationError(f"The example count must be a whole number between 1 and {spec.max_examples}.")
    flat = np.asarray(update).reshape(-1)
    if not np.isfinite(flat).all():
        raise QuantisationError("The update holds NaN or infinite values; it cannot be aggregated.")
    return flat


class ChunkEncoder:
    """Encodes ``update`` into ``out`` chunk by chunk (``out`` has one more word than ``update``: the count)."""

    def __init__(self, update: np.ndarray, examples: int, spec: QuantisationSpec, out: np.ndarray) -> None:
        self.flat = check_input(update, examples, spec)
        self.examples, self.spec, self.out = examples, spec, out
        self._real = np.empty(0, dtype=np.float64)
        self._fixed = np.empty(0, dtype=np.int64)

    def __call__(self, start: int, stop: int) -> None:
        values_stop = min(stop, self.flat.size)
        size = values_stop - start
        if size > 0:
            if self._real.size < size:
                self._real, self._fixed = np.empty(size, dtype=np.float64), np.empty(size, dtype=np.int64)
            real, fixed = self._real[:size], self._fixed[:size]
            np.clip(self.flat[start:values_stop], -self.spec.clip, self.spec.clip, out=real)
            real *= 2.0**self.spec.fraction_bits
            np.rint(real, out=real)
            fixed[:] = real
            fixed *= self.examples  # exact: |n·rint(w·2^f)| < 2^(k−1) ≤ 2^63 by the spec's overflow check
            np.copyto(self.out[start:values_stop], fixed, casting="unsafe")  # two's complement: the value mod 2^k
        if stop > self.flat.size:
            self.out[self.flat.size] = self.examples


def encode(update: np.ndarray, examples: int, spec: QuantisationSpec) -> np.ndarray:
    """``[n·rint(clip(w)·2^f) …, n]`` as unsigned k-bit words (length ``update.size + 1``)."""
    out = np.empty(np.asarray(update).size + 1, dtype=spec.unsigned)
    encoder = ChunkEncoder(update, examples, spec, out)
    encoder(0, out.size)
    return out


def decode(total: np.ndarray, spec: QuantisationSpec) -> tuple[np.ndarray, int]:
    """(weighted mean as float64, total example count) from the unmasked sum of encoded inputs."""
    signed = np.asarray(total, dtype=spec.unsigned).view(spec.signed)
    count = int(signed[-1])
    if count <= 0:
        raise QuantisationError("The aggregate holds no examples; the inputs were not encoded for this round.")
    if count > spec.max_nodes * spec.max_examples:  # range check of the count word: no node may weigh more
        raise QuantisationError(f"The aggregate claims {count} examples, more than {spec.max_nodes} nodes may hold "
                                f"under the cap of {spec.max_examples}: an input was not encoded for this round.")
    mean = signed[:-1].astype(np.float64)
    mean *= 1.0 / (2.0**spec.fraction_bits * count)
    # The weighted mean of clipped values lies within the clip range (plus rounding); anything else is a forged input.
    if mean.size and float(np.max(np.abs(mean))) > spec.clip + spec.error_bound:
        raise QuantisationError("The aggregate lies outside the clip range: an input was not encoded for this round.")
    return mean, count
