"""DP-SGD's randomness (``training.noise``): Gaussian noise of the asked standard deviation from an AES-256-CTR
stream with a fresh 256-bit key per round — nothing a seed, or the global torch RNG, can reproduce."""

from __future__ import annotations

import math

import torch

from pneumodesk.training.noise import SecureRandom


def test_the_key_has_256_bits_and_two_generators_never_agree():
    first, second = SecureRandom(), SecureRandom()
    assert first.key_bits >= 128
    assert not torch.equal(first.normal((1000,), 1.0), second.normal((1000,), 1.0))


def test_seeding_torch_does_not_reproduce_the_noise():
    torch.manual_seed(0)
    first = SecureRandom().normal((1000,), 1.0)
    torch.manual_seed(0)
    assert not torch.equal(first, SecureRandom().normal((1000,), 1.0))


def test_noise_is_gaussian_with_the_asked_standard_deviation():
    values = SecureRandom().normal((200_001,), 2.5, torch.float64)
    assert values.shape == (200_001,) and values.dtype == torch.float64 and torch.isfinite(values).all()
    assert abs(values.mean().item()) < 0.03 and abs(values.std().item() - 2.5) < 0.03
    fraction_within_one_sigma = (values.abs() < 2.5).double().mean().item()
    assert abs(fraction_within_one_sigma - math.erf(1 / math.sqrt(2))) < 0.005


def test_uniforms_cover_the_unit_interval():
    values = SecureRandom().uniform(100_000)
    assert values.min() >= 0 and values.max() < 1 and abs(values.mean().item() - 0.5) < 0.01
