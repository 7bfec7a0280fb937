"""One local training round of a federated plan: DP-SGD with Opacus, or plain SGD when the plan has DP off.

Invariants:
- Inputs come from ``imaging.preprocess`` (the one preprocessing function) via ``load_training_arrays``.
- With a ``PrivacyCost`` every step draws a Poisson batch (each example independently with probability q), clips
  every example's whole gradient to norm ``plan.dp.max_grad_norm`` (``clipping.PerExampleClipping``; Opacus'
  per-sample gradients for models it does not cover), adds Gaussian noise of std ``noise_multiplier ×
  max_grad_norm`` (Opacus' DP optimiser) and counts the step in Opacus' RDP accountant. The round runs exactly
  ``cost.steps_per_round`` steps, so the ε it reports is the ε the plan promised for a round. Padding a batch to a
  reusable shape adds zero-weight rows only: they contribute exactly nothing and are not data.
- The loss is the unweighted mean log loss. A class-balanced weight (as ``trainer.py`` uses) would make every
  example's gradient depend on the dataset's class counts, which DP-SGD's neighbouring-dataset argument does not
  cover, and would give non-IID hospitals different objectives; calibration on validation data corrects the prior.
- The DP noise and the Poisson sampling come from ``noise.SecureRandom`` (AES-256-CTR, a fresh key from
  ``os.urandom`` per round), never from ``seed``: an update cannot be de-noised by guessing a seed.
- Without DP, the same initial weights, data, plan and seed give the same update (bit for bit on one machine); with
  DP only the model's construction follows the seed. The caller's global torch RNG state is left as it was.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pneumodesk.federation.plan import TrainingPlan
from pneumodesk.model import build_model

from .clipping import PerExampleClipping, supports
from .datasets import TrainingDataError, load_model_inputs
from .noise import SecureRandom
from .privacy import PrivacyCost, epsilon_for

if TYPE_CHECKING:
    from opacus.optimizers import DPOptimizer

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[float], None]
StopCheck = Callable[[], bool]


class TrainingCancelled(Exception):
    """Raised when ``should_stop()`` turned true: the round was abandoned and nothing may be uploaded."""

    def __init__(self, message: str = "Training was cancelled; no model update was produced.") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class LocalUpdate:
    """The result of one local round. ``epsilon`` is this round's ε from the accountant (``None`` without DP)."""

    state: dict[str, torch.Tensor]  # float32, contiguous, same keys as the initial weights
    examples: int
    epsilon: float | None
    delta: float | None
    noise_multiplier: float | None
    sample_rate: float
    steps: int
    seconds: float


def load_training_arrays(files: Sequence[tuple[Path, int]], input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Read and preprocess ``(path, label)`` pairs: float32 inputs (N, 1, S, S) and int64 labels (1 = pneumonia).

    Files that cannot be read are skipped with a warning (the count returned is what training will use).
    """
    files = list(files)
    inputs, failures = load_model_inputs([path for path, _ in files], input_size)
    bad = {path for path, _ in failures}
    if failures:
        logger.warning("%d of %d training images could not be read and were skipped.", len(failures), len(files))
    labels = np.array([label for path, label in files if path not in bad], dtype=np.int64)
    if not len(labels):
        raise TrainingDataError("None of the dataset's images could be read, so there is nothing to train on.")
    return inputs.astype(np.float32), labels


def _optimiser(plan: TrainingPlan, parameters: list[nn.Parameter]) -> torch.optim.Optimizer:
    if plan.optimiser == "sgd":
        return torch.optim.SGD(
            parameters, lr=plan.learning_rate, momentum=plan.momentum, weight_decay=plan.weight_decay
        )
    if plan.optimiser == "adam":
        return torch.optim.Adam(parameters, lr=plan.learning_rate, weight_decay=plan.weight_decay)
    return torch.optim.AdamW(parameters, lr=plan.learning_rate, weight_decay=plan.weight_decay)


def _check_inputs(inputs: np.ndarray, labels: np.ndarray, plan: TrainingPlan) -> None:
    expected = (1, plan.input_size, plan.input_size)
    if inputs.ndim != 4 or tuple(inputs.shape[1:]) != expected:
        raise TrainingDataError(
            f"The training images were prepared at {tuple(inputs.shape[1:])}, but the plan needs {expected}."
        )
    if len(inputs) != len(labels) or not len(labels):
        raise TrainingDataError("There must be at least one training image and exactly one label per image.")


def train_local_round(
    initial: dict[str, torch.Tensor],
    inputs: np.ndarray,
    labels: np.ndarray,
    plan: TrainingPlan,
    cost: PrivacyCost | None,
    *,
    seed: int,
    progress: ProgressCallback | None = None,
    should_stop: StopCheck | None = None,
) -> LocalUpdate:
    """Train ``plan.architecture`` from ``initial`` on the local data for one round (``plan.local_epochs``).

    ``cost`` is ``plan_privacy_cost(plan, len(inputs))`` (``None`` = plain SGD, allowed only when DP is off).
    """
    _check_inputs(inputs, labels, plan)
    if cost is None and plan.dp.enabled:
        raise ValueError("This plan asks for differential privacy, so a privacy cost is required.")
    started = time.perf_counter()
    features = torch.as_tensor(np.ascontiguousarray(inputs), dtype=torch.float32)
    targets = torch.as_tensor(np.asarray(labels), dtype=torch.float32).reshape(-1)
    # The seed drives building the model, dropout and plain (non-DP) shuffling only; DP noise and Poisson sampling
    # never come from it (``SecureRandom`` in ``_train_private``).
    with torch.random.fork_rng(devices=[]):  # building the model and dropout draw from the global RNG
        torch.manual_seed(seed)
        model = build_model(plan.architecture)
        model.load_state_dict(initial, strict=True)
        if cost is None:
            steps = _train_plain(model, features, targets, plan, seed, progress, should_stop)
            epsilon = delta = noise = None
            sample_rate = min(1.0, plan.batch_size / len(targets))
        else:
            steps = _train_private(model, features, targets, plan, cost, seed, progress, should_stop)
            epsilon = epsilon_for(cost.noise_multiplier, cost.sample_rate, steps, cost.delta)
            delta, noise, sample_rate = cost.delta, cost.noise_multiplier, cost.sample_rate
    state = {name: value.detach().to(torch.float32).contiguous().clone() for name, value in model.state_dict().items()}
    if progress:
        progress(1.0)
    return LocalUpdate(state, len(targets), epsilon, delta, noise, sample_rate, steps, time.perf_counter() - started)


def _stop_if_asked(should_stop: StopCheck | None) -> None:
    if should_stop is not None and should_stop():
        raise TrainingCancelled()


def _train_plain(
    model: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    plan: TrainingPlan,
    seed: int,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
) -> int:
    """Shuffled mini-batches, every example once per epoch."""
    optimiser = _optimiser(plan, list(model.parameters()))
    generator = torch.Generator().manual_seed(seed)  # plain training only: no privacy rests on this order
    n = len(targets)
    per_epoch = -(-n // plan.batch_size)
    total = per_epoch * plan.local_epochs
    model.train()
    step = 0
    for _ in range(plan.local_epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, plan.batch_size):
            _stop_if_asked(should_stop)
            index = order[start : start + plan.batch_size]
            loss = F.binary_cross_entropy_with_logits(model(features[index]).reshape(-1), targets[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            step += 1
            if progress:
                progress(step / total)
    return step


def _train_private(
    model: nn.Module,
    features: torch.Tensor,
    targets: torch.Tensor,
    plan: TrainingPlan,
    cost: PrivacyCost,
    seed: int,
    progress: ProgressCallback | None,
    should_stop: StopCheck | None,
) -> int:
    """DP-SGD: Poisson batches, per-example clipping, Gaussian noise of std ``noise_multiplier × C`` (Opacus).

    Registry models (Conv2d, Linear, GroupNorm) are clipped by ``clipping.PerExampleClipping`` and noised by Opacus'
    ``DPOptimizerFastGradientClipping``; any other model by Opacus' ``GradSampleModule`` + ``DPOptimizer``. Both add
    the same noise to the same clipped sum ``Σ_i min(1, C/‖g_i‖) g_i`` and divide by the expected batch size.
    """
    n = len(targets)
    expected_batch = max(1, round(cost.sample_rate * n))
    gradients = (
        _ClippedSum(model, plan.dp.max_grad_norm, _padding_step(expected_batch))
        if supports(model)
        else _OpacusPerSample(model)
    )
    optimiser = gradients.optimiser_class(
        _optimiser(plan, [p for p in model.parameters() if p.requires_grad]),
        noise_multiplier=cost.noise_multiplier,
        max_grad_norm=plan.dp.max_grad_norm,
        expected_batch_size=expected_batch,
        loss_reduction="mean",
    )
    randomness = SecureRandom()  # noise and sampling: a CSPRNG, not the seed (see ``noise``)
    optimiser.secure_random = randomness
    model.train()
    try:
        with warnings.catch_warnings():
            # Opacus' hooks fire on module outputs when the input needs no gradient: expected, not a problem.
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            for step in range(1, cost.steps_per_round + 1):
                _stop_if_asked(should_stop)
                index = torch.nonzero(randomness.uniform(n) < cost.sample_rate).reshape(-1)
                optimiser.zero_grad(set_to_none=True)
                if len(index):
                    gradients.backward(features[index], targets[index])
                else:  # an empty Poisson batch still takes a (pure noise) step, as the accountant assumes
                    gradients.empty_batch()
                optimiser.step()
                if progress:
                    progress(step / cost.steps_per_round)
    finally:
        optimiser.zero_grad(set_to_none=True)
        gradients.close()  # remove the hooks and per-example attributes from the model
    return cost.steps_per_round


def _padding_step(expected_batch: int) -> int:
    """Poisson batches are padded up to a multiple of this (a power of two near 1/16 of the expected size, ≥ 8).

    Every new batch shape makes oneDNN build new convolution kernels (measured: +33 % per step on CPU when every
    step has a different size); a handful of padded shapes are built once and reused, for ≤ ~6 % padded rows.
    """
    return max(8, 1 << max(0, (expected_batch // 16).bit_length() - 1))


class _ClippedSum:
    """Leaves the clipped per-example gradient sum in ``p.grad`` (``clipping.PerExampleClipping``).

    The batch is padded with all-zero images whose loss has weight 0: their gradient is exactly zero, so they add
    nothing to the clipped sum (and nothing is sampled or accounted differently: the padding is not data).
    """

    def __init__(self, model: nn.Module, max_grad_norm: float, padding_step: int) -> None:
        self.optimiser_class = _noise_only_optimiser()  # Opacus noise and scaling; p.grad is already clipped
        self.model = model
        self.padding_step = padding_step
        self.clipping = PerExampleClipping(model, max_grad_norm)

    def backward(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        examples = len(targets)
        padded = -(-examples // self.padding_step) * self.padding_step
        batch = inputs.new_zeros((padded, *inputs.shape[1:]))
        batch[:examples] = inputs
        padded_targets = targets.new_zeros(padded)
        padded_targets[:examples] = targets
        real = targets.new_zeros(padded)
        real[:examples] = 1.0
        with self.clipping.recording():
            logits = self.model(batch).reshape(-1)
        # The sum of per-example losses (padding weighted 0): example i's gradient is exactly its own.
        loss = F.binary_cross_entropy_with_logits(logits, padded_targets, weight=real, reduction="sum")
        self.clipping.clip_into_grad(loss)

    def empty_batch(self) -> None:
        for parameter in self.clipping.parameters:
            parameter.grad = torch.zeros_like(parameter)

    def close(self) -> None:
        self.clipping.close()


def _noise_only_optimiser() -> type:
    """Opacus' ``DPOptimizerFastGradientClipping``, taking ``p.grad`` as the clipped sum without a deep copy.

    Its ``accumulate`` deep-copies every ``p.grad`` each step (a few ms on small models); the clipped sums that
    ``PerExampleClipping`` leaves in ``p.grad`` are fresh tensors every step, so they are used directly. Noise
    (``std = noise_multiplier × C``, drawn by ``_with_secure_noise``), the division by the expected batch size and
    the step are Opacus' own.
    """
    from opacus.optimizers import DPOptimizerFastGradientClipping

    class NoiseOnlyOptimiser(DPOptimizerFastGradientClipping):
        def accumulate(self) -> None:
            for parameter in self.params:
                if parameter.summed_grad is None:
                    parameter.summed_grad = parameter.grad
                else:
                    parameter.summed_grad = parameter.summed_grad + parameter.grad

    return _with_secure_noise(NoiseOnlyOptimiser)


def _with_secure_noise(optimiser_class: type[DPOptimizer]) -> type[DPOptimizer]:
    """``optimiser_class`` whose ``add_noise`` draws from ``self.secure_random`` (set after construction), not from
    a torch generator: Opacus' noise (``std = noise_multiplier × C``) with a CSPRNG as its source."""
    from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

    class SecureNoise(optimiser_class):
        secure_random: SecureRandom

        def add_noise(self) -> None:
            std = self.noise_multiplier * self.max_grad_norm
            for parameter in self.params:
                _check_processed_flag(parameter.summed_grad)
                summed = parameter.summed_grad
                noise = self.secure_random.normal(summed.shape, std, summed.dtype, summed.device)
                parameter.grad = (summed + noise).view_as(parameter)
                _mark_as_processed(parameter.summed_grad)

    return SecureNoise


class _OpacusPerSample:
    """Leaves per-example gradients in ``p.grad_sample`` for ``DPOptimizer`` to clip (Opacus' hooks)."""

    def __init__(self, model: nn.Module) -> None:
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        self.optimiser_class = _with_secure_noise(DPOptimizer)
        self.model = model
        self.private_model = GradSampleModule(model, loss_reduction="mean")

    def backward(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        logits = self.private_model(inputs).reshape(-1)
        F.binary_cross_entropy_with_logits(logits, targets).backward()

    def empty_batch(self) -> None:
        # The wrapper's parameters are the model's own; ``grad_sample`` is the attribute Opacus' hooks add to them.
        for parameter in self.private_model.parameters():
            parameter.grad_sample = torch.zeros((0, *parameter.shape))

    def close(self) -> None:
        self.private_model._close()
