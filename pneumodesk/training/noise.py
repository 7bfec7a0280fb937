"""The randomness of DP-SGD that the privacy guarantee rests on: Gaussian noise and Poisson sampling drawn from a
cryptographically secure generator, never from a seed someone could guess.

Why: the noise added to a round's clipped gradient sum is what hides each image. If it came from a seeded PRNG
(a 31-bit seed, say), whoever holds one update could try every seed offline, regenerate the noise, subtract it and
undo the guarantee. Opacus' own ``secure_mode`` needs ``torchcsprng``, which is not available for this torch, so
the noise is drawn here instead.

Choice: AES-256 in counter mode (``cryptography``, already a dependency for the node's keys) keyed with 32 bytes
from ``os.urandom`` for every round — a CSPRNG with a 256-bit key that is never stored, logged or derived from the
run's seed. Its output is turned into uniforms with 53 random bits and those into standard normals by Box–Muller
in float64 (cast to the gradient's dtype at the end). The Poisson sampling of each step's batch draws from the same
stream, so which images were sampled is secret too (the subsampling amplification assumes it).

Not covered: the floating-point attacks on Gaussian samplers (Mironov 2012; Jin et al. 2021), which Opacus'
``secure_mode`` blunts by summing four samples; this sampler draws one float64 normal per value.

Non-private runs keep their reproducible seed (``train_local_round(seed=…)``); private runs are, by design, not
reproducible.
"""

from __future__ import annotations

import math
import os

import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 32  # AES-256
_MANTISSA = 53


class SecureRandom:
    """A fresh AES-256-CTR keystream (key from ``os.urandom``) turned into uniforms and Gaussian noise."""

    def __init__(self) -> None:
        self.key_bits = KEY_BYTES * 8
        self._stream = Cipher(algorithms.AES(os.urandom(KEY_BYTES)), modes.CTR(bytes(16))).encryptor()

    def _words(self, count: int) -> torch.Tensor:
        """``count`` uniformly random 53-bit integers (as int64)."""
        raw = self._stream.update(bytes(8 * count))
        words = torch.frombuffer(bytearray(raw), dtype=torch.int64)
        return torch.bitwise_right_shift(words, 64 - _MANTISSA) & ((1 << _MANTISSA) - 1)

    def uniform(self, count: int) -> torch.Tensor:
        """``count`` float64 uniforms in [0, 1)."""
        return self._words(count).to(torch.float64) * 2.0**-_MANTISSA

    def normal(self, shape: torch.Size | tuple[int, ...], std: float, dtype: torch.dtype = torch.float32,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Gaussian noise of standard deviation ``std`` (Box–Muller in float64, then ``dtype``)."""
        count = math.prod(shape)
        if count == 0 or std == 0:
            return torch.zeros(shape, dtype=dtype, device=device)
        pairs = (count + 1) // 2
        radius_uniform = (self._words(pairs).to(torch.float64) + 1.0) * 2.0**-_MANTISSA  # (0, 1]: log is finite
        angle = self.uniform(pairs) * (2.0 * math.pi)
        radius = torch.sqrt(-2.0 * torch.log(radius_uniform)) * std
        values = torch.cat((radius * torch.cos(angle), radius * torch.sin(angle)))[:count]
        return values.reshape(shape).to(dtype=dtype, device=device)
