"""A training plan in plain words, as HTML for the review dialog: what will be trained, on which dataset, how long,
what it costs in privacy and exactly what will leave the workstation.

The "what leaves" list is fixed text, not derived from the plan: by design (DESIGN.md, invariant 1) a node never
sends images, file names or per-image values, whatever a plan says.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pneumodesk.federation import TrainingPlan
    from pneumodesk.node.datasets import DatasetInfo
    from pneumodesk.training.privacy import PrivacyCost

OPTIMISERS = {"sgd": "stochastic gradient descent (SGD)", "adam": "Adam", "adamw": "AdamW"}

LEAVES = (
    "the model update after each round (the changed weights{masked})",
    "the number of training examples used in the round",
    "protocol messages: joining a round, the node's signed identity, round and model numbers, checksums",
)
NEVER_LEAVES = "images, file names or paths, patient details, and any value computed for a single image"


def epsilon_text(value: float) -> str:
    return "unlimited (no privacy protection)" if math.isinf(value) else f"{value:.2f}"


def privacy_lines(plan: TrainingPlan, cost: PrivacyCost | None, examples: int | None) -> list[str]:
    """The privacy part, in words. ``cost`` is a ``training.privacy.PrivacyCost`` (None: DP off or not computed)."""
    if not plan.dp.enabled:
        return ["<b>No differential privacy</b>: the updates are not noised, so they carry more information about "
                "the training images."]
    if cost is None:
        return ["Differential privacy is on; its cost on the chosen dataset is being computed…"]
    target = (f"the noise is set so the whole plan spends at most ε = {plan.dp.target_epsilon:g}"
              if plan.dp.target_epsilon is not None else f"noise multiplier {plan.dp.noise_multiplier:g} as given")
    return [
        f"<b>Differential privacy (DP-SGD)</b>: each image's influence is clipped to norm {plan.dp.max_grad_norm:g} "
        f"and noise is added ({target}).",
        f"Privacy cost on this dataset ({examples} training images): <b>ε = {epsilon_text(cost.epsilon_per_round)} "
        f"per round</b> and <b>ε = {epsilon_text(cost.epsilon_total)} in total</b>, at δ = {cost.delta:g} "
        f"(noise multiplier {cost.noise_multiplier:.2f}, sampling rate {cost.sample_rate:.3g}, "
        f"{cost.steps_per_round} steps per round). Rounds add up to less than their sum: the whole plan never "
        "spends more than the total.",
    ]


def plan_html(plan: TrainingPlan, dataset: DatasetInfo | None, cost: PrivacyCost | None, *, spent: float | None = None,
              cap: float | None = None, reserved: float = 0.0) -> str:
    """The whole description; ``dataset`` is a ``DatasetInfo`` (None: none chosen yet)."""
    hyper = [f"learning rate {plan.learning_rate:g}", f"batch size {plan.batch_size}"]
    if plan.momentum:
        hyper.append(f"momentum {plan.momentum:g}")
    if plan.weight_decay:
        hyper.append(f"weight decay {plan.weight_decay:g}")
    if dataset is None:
        data = "No dataset chosen yet."
    else:
        data = (f"<b>{escape(dataset.name)}</b>: {dataset.training_count} images for training; its "
                f"{dataset.validation_count} validation images are used only here, to check new models.")
    items = [
        f"<b>Model</b>: {escape(plan.architecture)}, images scaled to {plan.input_size}×{plan.input_size} pixels, "
        f"starting from the weights with checksum {plan.base_model_sha256[:12]}…",
        f"<b>Dataset</b>: {data}",
        f"<b>Training</b>: {plan.rounds} round(s); in each, {plan.local_epochs} pass(es) over the training images "
        f"on this workstation. A round is combined once at least {plan.min_nodes} hospital(s) have sent their update "
        f"(deadline {plan.round_deadline_seconds // 60} min).",
        f"<b>Optimiser</b>: {OPTIMISERS.get(plan.optimiser, escape(plan.optimiser))}; " + ", ".join(hyper) + ".",
        *privacy_lines(plan, cost, dataset.training_count if dataset is not None else None),
        ("<b>Secure aggregation: on</b>: the coordinator can read only the sum of the hospitals' updates, never "
         "this workstation's own." if plan.secure_aggregation else
         "<b>Secure aggregation: off</b>: the coordinator can read this workstation's own update."),
    ]
    if spent is not None and cap is not None:
        held = f"; other approved plans may still spend ε = {reserved:.2f}" if reserved > 0 else ""
        items.append(f"<b>Privacy budget of this dataset</b>: ε = {spent:.2f} spent of the cap {cap:g}{held}.")
    masked = ", masked so that only the sum over hospitals can be read" if plan.secure_aggregation else ""
    leaves = "".join(f"<li>{escape(line.format(masked=masked))}</li>" for line in LEAVES)
    return (
        f"<h3>{escape(plan.name)}</h3>"
        + (f"<p>{escape(plan.description)}</p>" if plan.description else "")
        + "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"
        + "<p><b>What will leave this workstation</b>:</p><ul>" + leaves + "</ul>"
        + f"<p><b>What never leaves</b>: {NEVER_LEAVES}.</p>"
        + f"<p style='color:gray'>Plan identity (sha256): {plan.sha256}</p>"
    )


__all__ = ["LEAVES", "NEVER_LEAVES", "epsilon_text", "plan_html", "privacy_lines"]
