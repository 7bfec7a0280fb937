"""Privacy cost of DP-SGD under Opacus' RDP accountant: what a plan will spend, and the noise a budget needs.

No training happens here. The node passes these numbers to its policy check and privacy ledger; the training loop
(``local_round``) uses the same sample rate, steps and noise, so what was promised is what gets spent.

Invariants: sample rate q = min(1, batch_size / examples) (Poisson sampling); one local epoch is ⌊1/q⌋ steps (as
Opacus' uniform sampler does); a round is ``local_epochs`` epochs; the whole plan is ``rounds`` rounds on the same
dataset. ε of a round composes over rounds by the RDP accountant (tighter than adding ε per round).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

from opacus.accountants import RDPAccountant
from opacus.accountants.utils import get_noise_multiplier

from pneumodesk.errors import PneumoDeskError
from pneumodesk.federation.plan import TrainingPlan

# Opacus' default RDP orders plus larger ones: few steps at high ε need orders beyond 63 for a tight bound.
RDP_ORDERS: list[float] = [*RDPAccountant.DEFAULT_ALPHAS, 80, 96, 128, 192, 256, 384, 512]


class PrivacyBudgetError(PneumoDeskError, ValueError):
    """A privacy budget cannot be met with these settings (plain-language message)."""


@dataclass(frozen=True)
class PrivacyCost:
    """What one node spends on one dataset: per round and for the whole plan, at ``delta``."""

    epsilon_per_round: float
    epsilon_total: float
    delta: float
    noise_multiplier: float
    sample_rate: float
    steps_per_round: int


def sample_rate_for(batch_size: int, examples: int) -> float:
    """Poisson sampling rate q = batch_size / examples, at most 1."""
    if examples <= 0:
        raise PrivacyBudgetError("The dataset has no training examples.")
    return min(1.0, batch_size / examples)


def steps_per_epoch(sample_rate: float) -> int:
    """Steps in one pass over the data at this sampling rate (⌊1/q⌋, at least 1)."""
    return max(1, int(1.0 / sample_rate))


@lru_cache(maxsize=1024)  # pure function of its numbers; the RDP sums are slow at large sampling rates
def epsilon_for(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """ε after ``steps`` DP-SGD steps with Poisson rate ``sample_rate`` (RDP accountant); ∞ without noise."""
    if steps <= 0:
        return 0.0
    if noise_multiplier <= 0:
        return math.inf
    accountant = RDPAccountant()
    accountant.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is valid, just looser
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        return float(accountant.get_epsilon(delta=delta, alphas=RDP_ORDERS))


@lru_cache(maxsize=256)
def noise_for_budget(target_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The smallest noise multiplier (to 0.01 in ε) whose ε after ``steps`` steps is at most ``target_epsilon``."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
            noise = get_noise_multiplier(
                target_epsilon=target_epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=max(1, int(steps)),
                accountant="rdp",
                epsilon_tolerance=0.01,
                alphas=RDP_ORDERS,
            )
    except ValueError:
        raise PrivacyBudgetError(
            f"A privacy budget of ε = {target_epsilon:g} is too small for {steps} training steps at sampling rate "
            f"{sample_rate:.4g}: no amount of noise reaches it. Allow a larger ε, fewer rounds or epochs, or a "
            "smaller batch."
        ) from None
    return float(noise)


def plan_privacy_cost(plan: TrainingPlan, examples: int) -> PrivacyCost | None:
    """The plan's cost on a dataset of ``examples`` training images; ``None`` when the plan has DP switched off.

    With ``plan.dp.target_epsilon`` set, the noise is calibrated so that the whole plan (rounds × local_epochs)
    spends at most that ε on this dataset; otherwise ``plan.dp.noise_multiplier`` is used as given.
    """
    if not plan.dp.enabled:
        return None
    q = sample_rate_for(plan.batch_size, examples)
    per_round = plan.local_epochs * steps_per_epoch(q)
    delta = plan.dp.target_delta
    if plan.dp.target_epsilon is not None:
        noise = noise_for_budget(plan.dp.target_epsilon, delta, q, per_round * plan.rounds)
    else:
        noise = plan.dp.noise_multiplier
    return PrivacyCost(
        epsilon_per_round=epsilon_for(noise, q, per_round, delta),
        epsilon_total=epsilon_for(noise, q, per_round * plan.rounds, delta),
        delta=delta,
        noise_multiplier=noise,
        sample_rate=q,
        steps_per_round=per_round,
    )


def epsilon_after_rounds(cost: PrivacyCost, rounds: int) -> float:
    """ε the plan has spent on this dataset after ``rounds`` completed rounds (RDP composition over rounds)."""
    return epsilon_for(cost.noise_multiplier, cost.sample_rate, cost.steps_per_round * rounds, cost.delta)


def ledger_increment(cost: PrivacyCost, round_number: int) -> float:
    """What to record in an additive privacy ledger for round ``round_number`` (1-based) of one plan.

    ε(after k rounds) − ε(after k−1 rounds): the increments of a plan's rounds add up exactly to the RDP-composed
    ε of the rounds done (≤ ``epsilon_total``), whereas adding each round's stand-alone ε would overstate it.
    """
    if round_number < 1:
        raise ValueError("round numbers start at 1")
    return epsilon_after_rounds(cost, round_number) - epsilon_after_rounds(cost, round_number - 1)
