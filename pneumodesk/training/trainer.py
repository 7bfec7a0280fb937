"""Local training and evaluation of one network on preprocessed inputs."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .augment import augment_batch
from .recipe import TrainingRecipe
from .shifts import shift_standardised


@dataclass(frozen=True)
class EpochReport:
    epoch: int
    train_loss: float
    validation_loss: float
    validation_auc: float
    seconds: float


def class_balanced_pos_weight(labels: np.ndarray) -> torch.Tensor:
    """Weight positives by negatives/positives so each class carries equal weight in the loss."""
    positives = max(int((labels == 1).sum()), 1)
    negatives = max(int((labels == 0).sum()), 1)
    return torch.tensor(negatives / positives, dtype=torch.float32)


def predict_logits(model: nn.Module, inputs: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits for preprocessed inputs (n, 1, S, S), in evaluation mode, without gradients."""
    model.eval()
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            batch = torch.as_tensor(inputs[start : start + batch_size], dtype=torch.float32)
            outputs.append(model(batch).reshape(-1).numpy())
    return np.concatenate(outputs) if outputs else np.zeros(0, dtype=np.float32)


def train_model(
    model: nn.Module,
    recipe: TrainingRecipe,
    train_inputs: np.ndarray,
    train_labels: np.ndarray,
    validation_inputs: np.ndarray,
    validation_labels: np.ndarray,
    *,
    on_batch: Callable[[int, float], None] | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    extra_augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
) -> list[EpochReport]:
    """Train in place with AdamW and a one-cycle schedule; class-weighted log loss; returns per-epoch reports.
    With ``recipe.weight_averaging`` the model ends with the exponential moving average of its weights.

    Each batch of preprocessed inputs goes through the recipe's shift-aware augmentation (``recipe.shift_augment``,
    ``shifts.shift_standardised``) and then its geometric augmentation (``recipe.augment``). ``extra_augment``
    (experiments) replaces the shift-aware step; either draws from its own generator, seeded from the recipe's seed."""
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    extra_rng = np.random.default_rng(recipe.seed)
    if extra_augment is None and recipe.shift_augment > 0:
        extra_augment = functools.partial(
            shift_standardised, probability=recipe.shift_augment, include_inversion=recipe.shift_inversion
        )
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    steps_per_epoch = max(1, -(-len(train_inputs) // recipe.batch_size))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=recipe.learning_rate, total_steps=recipe.epochs * steps_per_epoch, pct_start=0.15
    )
    averaged = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.weight_averaging))
        if recipe.weight_averaging > 0
        else None
    )
    pos_weight = class_balanced_pos_weight(train_labels)
    labels_tensor = torch.as_tensor(train_labels, dtype=torch.float32)
    reports: list[EpochReport] = []
    for epoch in range(1, recipe.epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_inputs), generator=generator).numpy()
        losses = []
        for start in range(0, len(order), recipe.batch_size):
            index = order[start : start + recipe.batch_size]
            rows = train_inputs[index] if extra_augment is None else extra_augment(train_inputs[index], extra_rng)
            batch = torch.as_tensor(rows, dtype=torch.float32)
            if recipe.augment:
                batch = augment_batch(batch, generator)
            logits = model(batch).reshape(-1)
            loss = F.binary_cross_entropy_with_logits(logits, labels_tensor[index], pos_weight=pos_weight)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if averaged is not None:
                averaged.update_parameters(model)
            losses.append(float(loss.detach()))
            if on_batch:
                on_batch(len(index), losses[-1])
        logits = predict_logits(model if averaged is None else averaged.module, validation_inputs)
        validation_loss = (
            float(
                F.binary_cross_entropy_with_logits(
                    torch.as_tensor(logits),
                    torch.as_tensor(validation_labels, dtype=torch.float32),
                    pos_weight=pos_weight,
                )
            )
            if len(logits)
            else float("nan")
        )
        auc = (
            float(roc_auc_score(validation_labels, logits))
            if len(set(validation_labels.tolist())) == 2
            else float("nan")
        )
        report = EpochReport(epoch, float(np.mean(losses)), validation_loss, auc, time.perf_counter() - started)
        reports.append(report)
        if on_epoch:
            on_epoch(report)
    if averaged is not None:  # the averaged weights become the model (GroupNorm: no running statistics to refit)
        model.load_state_dict(averaged.module.state_dict())
    return reports
