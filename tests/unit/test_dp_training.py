"""A local federated round: DP-SGD with Opacus (clipping, noise, accountant), plain SGD, cancellation, determinism,
and the acceptance gate that turns new weights into a calibrated candidate bundle."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from opacus import GradSampleModule
from opacus.validators import ModuleValidator

from pneumodesk.federation.plan import DifferentialPrivacy, TrainingPlan
from pneumodesk.imaging import preprocess, read_xray
from pneumodesk.inference import Predictor
from pneumodesk.model import architecture_names, build_model, load_bundle
from pneumodesk.training.acceptance import candidate_bundle, evaluate_bundle_locally, evaluate_weights
from pneumodesk.training.clipping import PerExampleClipping, UnsupportedLayerError, supports
from pneumodesk.training.datasets import TrainingDataError, scan_folder
from pneumodesk.training.local_round import TrainingCancelled, load_training_arrays, train_local_round
from pneumodesk.training.privacy import plan_privacy_cost
from tests.builders import make_tiny_bundle

SIZE = 28


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train fastest on one thread, above all on a busy machine; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_plan(**changes) -> TrainingPlan:
    fields = dict(
        name="test plan",
        architecture="pneumonet-tiny",
        input_size=SIZE,
        base_model_sha256="0" * 64,
        learning_rate=0.2,
        batch_size=16,
        local_epochs=1,
        rounds=3,
        min_nodes=1,
        dp=DifferentialPrivacy(target_epsilon=8.0, max_grad_norm=1.0),
    )
    return TrainingPlan(**{**fields, **changes})


def synthetic(n: int = 96, seed: int = 0, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Learnable toy data: positives carry a bright square."""
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)
    inputs = rng.normal(size=(n, 1, size, size)).astype(np.float32)
    inputs[labels == 1, :, size // 3 : size // 2, size // 3 : size // 2] += 2.0
    return inputs, labels


def initial_weights(architecture: str = "pneumonet-tiny", seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return {name: tensor.clone() for name, tensor in build_model(architecture).state_dict().items()}


@pytest.mark.parametrize("architecture", architecture_names())
def test_every_registry_architecture_passes_opacus_validation_and_trains_privately(architecture):
    ModuleValidator.validate(build_model(architecture), strict=True)  # raises on BatchNorm, in-place ops, ...
    inputs, labels = synthetic(8)
    plan = make_plan(architecture=architecture, batch_size=4, rounds=1)
    update = train_local_round(initial_weights(architecture), inputs, labels, plan, plan_privacy_cost(plan, 8), seed=3)
    assert update.state.keys() == initial_weights(architecture).keys()


def test_dp_round_changes_weights_and_reports_what_the_accountant_spent():
    inputs, labels = synthetic()
    plan = make_plan()
    cost = plan_privacy_cost(plan, len(labels))
    initial = initial_weights()
    seen: list[float] = []
    update = train_local_round(initial, inputs, labels, plan, cost, seed=1, progress=seen.append)
    assert update.examples == len(labels)
    assert update.steps == cost.steps_per_round == int(96 / 16)
    assert update.epsilon == pytest.approx(cost.epsilon_per_round)
    assert update.epsilon <= cost.epsilon_total <= plan.dp.target_epsilon
    assert (update.delta, update.noise_multiplier, update.sample_rate) == (
        cost.delta,
        cost.noise_multiplier,
        cost.sample_rate,
    )
    assert any(not torch.equal(update.state[name], initial[name]) for name in initial)
    assert all(t.dtype == torch.float32 and t.is_contiguous() for t in update.state.values())
    assert seen == sorted(seen) and seen[-1] == 1.0
    # The model handed back is a plain network again: no Opacus hooks or per-sample gradients left behind.
    model = build_model("pneumonet-tiny")
    model.load_state_dict(update.state, strict=True)


def test_per_sample_gradients_are_clipped():
    """Without noise and with every example in the batch, one SGD step moves the weights by at most lr × C."""
    inputs, labels = synthetic(32)
    inputs *= 50.0  # huge inputs give per-example gradients far above the clipping bound
    clip = 0.05
    plan = make_plan(
        batch_size=32, learning_rate=1.0, dp=DifferentialPrivacy(target_epsilon=None, noise_multiplier=0.0,
                                                                 max_grad_norm=clip)
    )
    cost = plan_privacy_cost(plan, 32)
    assert (cost.sample_rate, cost.steps_per_round) == (1.0, 1)
    initial = initial_weights()

    def step_norm(update) -> float:
        return float(torch.sqrt(sum(((update.state[k] - initial[k]) ** 2).sum() for k in initial)))

    private = train_local_round(initial, inputs, labels, plan, cost, seed=0)
    plain_plan = make_plan(batch_size=32, learning_rate=1.0, dp=DifferentialPrivacy(enabled=False))
    plain = train_local_round(initial, inputs, labels, plain_plan, None, seed=0)
    assert 0 < step_norm(private) <= clip * 1.0001
    assert step_norm(plain) > 10 * clip


def clipped_sum(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, clip: float):
    """PerExampleClipping's per-example norms and clipped gradient sum (one tensor per parameter)."""
    clipping = PerExampleClipping(model, clip)
    torch.manual_seed(7)  # the same dropout masks as the reference below
    with clipping.recording():
        logits = model(inputs).reshape(-1)
    norms = clipping.clip_into_grad(F.binary_cross_entropy_with_logits(logits, labels, reduction="sum"))
    clipping.close()
    return norms, [p.grad.clone() for p in model.parameters()]


def opacus_per_sample(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor):
    """Ground truth: Opacus' materialised per-sample gradients and each example's total gradient norm."""
    private = GradSampleModule(model, loss_reduction="sum")
    torch.manual_seed(7)
    with warnings.catch_warnings():  # Opacus' hooks fire on outputs when the images need no gradient: expected
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        F.binary_cross_entropy_with_logits(private(inputs).reshape(-1), labels, reduction="sum").backward()
    samples = [p.grad_sample for p in model.parameters()]
    private._close()
    return torch.stack([g.reshape(len(labels), -1).norm(dim=1) for g in samples], dim=1).norm(dim=1), samples


@pytest.mark.parametrize("architecture", architecture_names())
def test_per_example_clipping_equals_clipping_opacus_per_sample_gradients(architecture):
    """Every layer route (im2col, grouped convolution, ghost norms; GroupNorm; Linear) against Opacus."""
    inputs, labels = (torch.as_tensor(a) for a in synthetic(24, seed=4))
    labels = labels.float()
    model = build_model(architecture)
    reference = build_model(architecture)
    reference.load_state_dict(model.state_dict())
    model.train(), reference.train()
    expected_norms, samples = opacus_per_sample(reference, inputs, labels)
    clip = float(expected_norms.median())  # about half the examples are clipped
    factors = (clip / (expected_norms + 1e-6)).clamp(max=1.0)  # as Opacus' DPOptimizer clips
    expected = [torch.einsum("i,i...->...", factors, g) for g in samples]
    norms, sums = clipped_sum(model, inputs, labels, clip)
    torch.testing.assert_close(norms, expected_norms, rtol=1e-4, atol=1e-6)
    for got, want in zip(sums, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def test_each_example_contributes_at_most_the_clipping_bound():
    """The batch's clipped sum is the sum of each example's own clipped gradient, each of norm ≤ C."""
    inputs, labels = (torch.as_tensor(a) for a in synthetic(12, seed=2))
    inputs, labels = inputs * 20.0, labels.float()
    clip = 0.1
    model = build_model("pneumonet-tiny")
    _, batch = clipped_sum(model, inputs, labels, clip)
    total = [torch.zeros_like(p) for p in model.parameters()]
    for i in range(len(labels)):
        norms, alone = clipped_sum(model, inputs[i : i + 1], labels[i : i + 1], clip)
        assert float(norms[0]) > clip  # this example really was clipped ...
        assert float(torch.sqrt(sum((g**2).sum() for g in alone))) <= clip * 1.0001  # ... down to the bound
        total = [t + g for t, g in zip(total, alone, strict=True)]
    for got, want in zip(batch, total, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_padded_rows_of_a_poisson_batch_add_nothing():
    from pneumodesk.training.local_round import _ClippedSum

    inputs, labels = (torch.as_tensor(a) for a in synthetic(13, seed=3))
    results = []
    for padding_step in (1, 8):  # 13 examples, or 13 padded to 16 with zero-weight rows
        model = build_model("pneumonet-tiny")
        model.load_state_dict(initial_weights())
        gradients = _ClippedSum(model, 0.5, padding_step)
        gradients.backward(inputs, labels.float())
        results.append([p.grad.clone() for p in model.parameters()])
        gradients.close()
    for padded, plain in zip(*results, strict=True):
        torch.testing.assert_close(padded, plain, rtol=1e-5, atol=1e-7)


def test_layers_per_example_clipping_cannot_handle_are_refused():
    assert supports(build_model("pneumonet-tiny"))
    unsupported = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    assert not supports(unsupported)
    with pytest.raises(UnsupportedLayerError, match="LayerNorm"):
        PerExampleClipping(unsupported, 1.0)
    shared = torch.nn.Linear(4, 4)
    clipping = PerExampleClipping(shared, 1.0)
    with pytest.raises(UnsupportedLayerError, match="ran twice"), clipping.recording():
        shared(shared(torch.ones(2, 4)))


def test_models_outside_the_fast_path_still_train_privately_with_opacus():
    from pneumodesk.training import local_round

    inputs, labels = synthetic(16)
    plan = make_plan(batch_size=8, rounds=1)
    cost = plan_privacy_cost(plan, 16)
    initial = initial_weights()
    fast = train_local_round(initial, inputs, labels, plan, cost, seed=2)
    original = local_round.supports
    local_round.supports = lambda model: False  # force Opacus' GradSampleModule + DPOptimizer
    try:
        slow = train_local_round(initial, inputs, labels, plan, cost, seed=2)
    finally:
        local_round.supports = original
    assert slow.epsilon == fast.epsilon and slow.steps == fast.steps
    assert any(not torch.equal(slow.state[k], initial[k]) for k in initial)


def test_dp_noise_does_not_follow_the_seed_but_plain_training_does():
    """DP noise and sampling come from a CSPRNG: one seed cannot regenerate them (two runs with the same seed
    differ); without DP the same seed gives the same update bit for bit."""
    inputs, labels = synthetic()
    plan = make_plan()
    cost = plan_privacy_cost(plan, len(labels))
    initial = initial_weights()
    before = torch.get_rng_state()
    first = train_local_round(initial, inputs, labels, plan, cost, seed=5)
    again = train_local_round(initial, inputs, labels, plan, cost, seed=5)
    assert any(not torch.equal(first.state[k], again.state[k]) for k in initial)
    assert any(not torch.equal(first.state[k], initial[k]) for k in initial)  # noise (and data) moved the weights
    plain_plan = make_plan(dp=DifferentialPrivacy(enabled=False))
    plain = [train_local_round(initial, inputs, labels, plain_plan, None, seed=5) for _ in range(2)]
    assert all(torch.equal(plain[0].state[k], plain[1].state[k]) for k in initial)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's global RNG is untouched


def test_plain_sgd_when_dp_is_off():
    inputs, labels = synthetic()
    plan = make_plan(dp=DifferentialPrivacy(enabled=False), local_epochs=2)
    update = train_local_round(initial_weights(), inputs, labels, plan, None, seed=0)
    assert (update.epsilon, update.delta, update.noise_multiplier) == (None, None, None)
    assert update.steps == 2 * 6
    with pytest.raises(ValueError, match="privacy cost is required"):
        train_local_round(initial_weights(), inputs, labels, make_plan(), None, seed=0)


def test_cancellation_stops_the_round():
    inputs, labels = synthetic()
    plan = make_plan()
    calls = []

    def should_stop() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(TrainingCancelled):
        train_local_round(
            initial_weights(), inputs, labels, plan, plan_privacy_cost(plan, 96), seed=0, should_stop=should_stop
        )
    assert len(calls) == 3
    with pytest.raises(TrainingCancelled):
        train_local_round(
            initial_weights(), inputs, labels, make_plan(dp=DifferentialPrivacy(enabled=False)), None, seed=0,
            should_stop=lambda: True,
        )


def test_inputs_of_the_wrong_size_are_refused():
    inputs, labels = synthetic(size=32)
    with pytest.raises(TrainingDataError, match="plan needs"):
        train_local_round(initial_weights(), inputs, labels, make_plan(), plan_privacy_cost(make_plan(), 96), seed=0)


def test_load_training_arrays_uses_the_one_preprocessing_function(labelled_folder):
    dataset = scan_folder(labelled_folder)
    files = [(image.path, image.label) for image in dataset.images]
    inputs, labels = load_training_arrays(files, SIZE)
    assert inputs.dtype == np.float32 and inputs.shape == (len(files), 1, SIZE, SIZE)
    assert labels.dtype == np.int64 and labels.tolist() == [label for _, label in files]
    expected = preprocess(read_xray(files[0][0]), SIZE)
    np.testing.assert_allclose(inputs[0], expected, atol=2e-3)  # stored as float16 on the way


def test_candidate_bundle_is_a_calibrated_bundle_that_predicts(tmp_path, labelled_folder):
    dataset = scan_folder(labelled_folder)
    files = [(image.path, image.label) for image in dataset.images]
    base = make_tiny_bundle(input_size=SIZE)
    inputs, labels = load_training_arrays(files, SIZE)
    plan = make_plan(learning_rate=0.05, local_epochs=3, dp=DifferentialPrivacy(enabled=False), batch_size=8)
    update = train_local_round(base.state_dict, inputs, labels, plan, None, seed=0)

    figures = evaluate_weights(update.state, "pneumonet-tiny", SIZE, files)
    assert {"roc_auc", "roc_auc_ci95", "sensitivity", "specificity", "images"} <= figures.keys()
    assert figures["images"] == len(files)
    baseline = evaluate_bundle_locally(base, (inputs, labels))
    assert 0.0 <= baseline["roc_auc"] <= 1.0

    out, metrics = candidate_bundle(update.state, base, files, tmp_path / "candidate", version="fed-1")
    bundle = load_bundle(out)
    assert bundle.card.version == "fed-1" and bundle.card.architecture == "pneumonet-tiny"
    assert metrics["roc_auc"] == pytest.approx(figures["roc_auc"], abs=1e-4)
    assert bundle.card.validation["roc_auc"] == pytest.approx(metrics["roc_auc"], abs=1e-3)
    assert all(torch.equal(bundle.state_dict[k], update.state[k]) for k in update.state)
    prediction = Predictor(bundle).predict(read_xray(files[0][0]))
    assert 0.0 <= prediction.probability <= 1.0


def test_acceptance_needs_both_classes():
    inputs, _ = synthetic(8)
    with pytest.raises(TrainingDataError, match="both classes"):
        evaluate_weights(initial_weights(), "pneumonet-tiny", SIZE, (inputs, np.zeros(8, dtype=np.int64)))
