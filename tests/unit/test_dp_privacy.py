"""Privacy maths of DP-SGD plans (Opacus RDP accountant): ε per step count, noise for a budget, a plan's cost."""

from __future__ import annotations

import math

import pytest

from pneumodesk.federation.plan import DifferentialPrivacy, TrainingPlan
from pneumodesk.training.privacy import (
    PrivacyBudgetError,
    epsilon_after_rounds,
    epsilon_for,
    ledger_increment,
    noise_for_budget,
    plan_privacy_cost,
)


def make_plan(**changes) -> TrainingPlan:
    fields = dict(
        name="test plan",
        architecture="pneumonet-tiny",
        input_size=28,
        base_model_sha256="0" * 64,
        learning_rate=0.1,
        batch_size=32,
        local_epochs=2,
        rounds=5,
        min_nodes=1,
    )
    return TrainingPlan(**{**fields, **changes})


def test_epsilon_grows_with_steps_and_shrinks_with_noise():
    values = [epsilon_for(1.0, 0.01, steps, 1e-5) for steps in (10, 100, 1000)]
    assert values[0] < values[1] < values[2]
    assert epsilon_for(2.0, 0.01, 1000, 1e-5) < values[2]
    assert epsilon_for(1.0, 0.01, 0, 1e-5) == 0.0
    assert math.isinf(epsilon_for(0.0, 0.01, 10, 1e-5))


@pytest.mark.parametrize("target,rate,steps", [(8.0, 0.01, 1000), (1.0, 0.05, 200), (3.0, 0.2, 30)])
def test_noise_for_budget_round_trips_with_epsilon_for(target, rate, steps):
    noise = noise_for_budget(target, 1e-5, rate, steps)
    spent = epsilon_for(noise, rate, steps, 1e-5)
    assert target - 0.02 <= spent <= target
    assert epsilon_for(noise * 0.97, rate, steps, 1e-5) > spent  # the smallest noise that meets the budget


def test_plan_without_dp_costs_nothing():
    assert plan_privacy_cost(make_plan(dp=DifferentialPrivacy(enabled=False)), 1000) is None


def test_plan_with_target_epsilon_spends_it_over_the_whole_plan():
    plan = make_plan(dp=DifferentialPrivacy(target_epsilon=8.0, target_delta=1e-5))
    cost = plan_privacy_cost(plan, 1000)
    assert cost.sample_rate == pytest.approx(32 / 1000)
    assert cost.steps_per_round == 2 * int(1000 / 32)
    assert 7.9 <= cost.epsilon_total <= 8.0
    assert cost.epsilon_per_round < cost.epsilon_total
    assert cost.epsilon_total == pytest.approx(epsilon_for(cost.noise_multiplier, cost.sample_rate, 5 * 62, 1e-5))
    # More data at the same plan means a lower sampling rate, so less noise is needed for the same ε.
    assert plan_privacy_cost(plan, 10_000).noise_multiplier < cost.noise_multiplier


def test_plan_without_target_uses_the_given_noise():
    plan = make_plan(dp=DifferentialPrivacy(target_epsilon=None, noise_multiplier=1.3))
    cost = plan_privacy_cost(plan, 640)
    assert cost.noise_multiplier == 1.3
    assert cost.epsilon_total == pytest.approx(epsilon_for(1.3, 0.05, 5 * 2 * 20, 1e-5))


def test_ledger_increments_add_up_to_the_composed_epsilon():
    cost = plan_privacy_cost(make_plan(), 500)
    increments = [ledger_increment(cost, k) for k in range(1, 6)]
    assert all(value > 0 for value in increments)
    assert sum(increments) == pytest.approx(cost.epsilon_total)
    assert increments[0] == pytest.approx(cost.epsilon_per_round)
    assert epsilon_after_rounds(cost, 5) == pytest.approx(cost.epsilon_total)
    # Adding each round's stand-alone ε would overstate the spend:
    assert 5 * cost.epsilon_per_round > cost.epsilon_total


def test_impossible_budget_is_refused_in_plain_words():
    with pytest.raises(PrivacyBudgetError, match="too small"):
        noise_for_budget(1e-4, 1e-5, 1.0, 10_000)
