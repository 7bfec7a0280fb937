"""``pneumodesk plans show|approve|withdraw|list`` (approve_training) and ``pneumodesk models list|accept|reject|
restore|performance`` (the local model registry; changes need approve_training; ``performance``: the prediction model on
this month's confirmed cases against its card).

A plan is given as its JSON file, or by its sha256 (or a unique prefix of it) when this node has seen it before
(an earlier approval). Its privacy cost on the chosen dataset is computed by ``training.privacy`` (imported only
when a plan command runs) and checked against the node policy and the dataset's privacy budget before anything is
recorded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pneumodesk.commands.datasets import add_sign_in_arguments, run_node_command, signed_in

if TYPE_CHECKING:
    from pneumodesk.federation.plan import TrainingPlan
    from pneumodesk.node import DatasetInfo, NodeService, UserSession


def add_approvals_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plans = commands.add_parser("plans", help="read, approve and withdraw training plans (needs approve_training)")
    actions = plans.add_subparsers(dest="plans_command", required=True)
    show = actions.add_parser("show", help="describe a plan in plain words, with its privacy cost and policy check")
    approve = actions.add_parser("approve", help="approve a plan for one dataset (checked against the policy)")
    for parser in (show, approve):
        parser.add_argument("plan", metavar="FILE_OR_SHA", help="the plan's JSON file, or its sha256")
        parser.add_argument("--dataset", type=int, required=True, metavar="ID", help="the dataset it would train on")
    approve.add_argument("--coordinator", metavar="URL", help="coordinator address (default: the enrolled one)")
    withdraw = actions.add_parser("withdraw", help="withdraw a plan's approval (training stops before next round)")
    withdraw.add_argument("plan", metavar="SHA")
    listing = actions.add_parser("list", help="every approval given, newest first")
    for parser in (show, approve, withdraw, listing):
        add_sign_in_arguments(parser, "needs approve_training")
        parser.set_defaults(run=plans_command)

    models = commands.add_parser("models", help="the local model registry: accept, reject or restore models")
    model_actions = models.add_subparsers(dest="models_command", required=True)
    model_list = model_actions.add_parser("list", help="every local model, newest first")
    add_sign_in_arguments(model_list, "any account")
    model_list.set_defaults(run=models_command)
    performance = model_actions.add_parser("performance", help="the prediction model on this month's confirmed "
                                           "cases against its model card (exit status 3 when it drifted)")
    add_sign_in_arguments(performance, "needs approve_training")
    performance.set_defaults(run=models_command)
    for name, text in (("accept", "make a new (candidate) model the prediction model"),
                       ("reject", "reject a new (candidate) model"),
                       ("restore", "make an earlier model the prediction model again")):
        parser = model_actions.add_parser(name, help=text)
        parser.add_argument("model_id", type=int, metavar="ID")
        add_sign_in_arguments(parser, "needs approve_training")
        parser.set_defaults(run=models_command)


# --- plans ---
def plans_command(args: argparse.Namespace) -> int:
    return run_node_command("plans", _plans, args)


def _plans(args: argparse.Namespace) -> int:
    from pneumodesk.node import ApprovalError

    with signed_in(args) as (node, actor):
        if args.plans_command == "list":
            approvals = node.approvals.list(actor)
            for a in approvals:
                state = "withdrawn" if a.withdrawn_at else "ACTIVE"
                epsilon = "no DP" if a.epsilon_total is None else f"ε = {a.epsilon_total:.2f}"
                print(f"{a.plan_sha256}  {state:<9} dataset {a.dataset_id}  {epsilon}  by {a.approved_by} "
                      f"{a.approved_at.isoformat(timespec='seconds')}  {a.plan.name}")
            if not approvals:
                print("No plan has been approved on this node.")
            return 0
        if args.plans_command == "withdraw":
            sha = _known_sha(node, actor, args.plan)
            if sha is None:
                raise ApprovalError("No approval of a plan with this hash is known on this node.")
            node.approvals.withdraw(actor, sha)
            print(f"Withdrew the approval of plan {sha}.")
            return 0
        plan = _load_plan(node, actor, args.plan)
        dataset = node.datasets.get(actor, args.dataset)
        epsilon_total = _describe(node, plan, dataset)
        if args.plans_command == "show":
            return 0
        coordinator = args.coordinator or _enrolled_coordinator(node)
        approval = node.approvals.approve(actor, plan, dataset.id, coordinator, epsilon_total)
        print(f"Approved plan {approval.plan_sha256} on dataset {dataset.id}. A changed plan needs a new approval.")
    return 0


def _describe(node: NodeService, plan: TrainingPlan, dataset: DatasetInfo) -> float | None:
    """Print the plan in plain words with its privacy cost and any policy violations; returns its total ε."""
    from pneumodesk.node import plan_violations
    from pneumodesk.training.privacy import PrivacyBudgetError, plan_privacy_cost

    epsilon_total: float | None
    try:
        cost = plan_privacy_cost(plan, dataset.training_count)
    except PrivacyBudgetError as error:
        print(f"Privacy cost: cannot be met ({error})")
        cost, epsilon_total = None, float("inf")
    else:
        epsilon_total = None if cost is None else cost.epsilon_total
    print(f"Plan {plan.sha256}: {plan.name}")
    print(f"  model: {plan.architecture} at {plan.input_size} px, starting from weights {plan.base_model_sha256[:12]}…")
    print(f"  dataset: {dataset.id} {dataset.name} ({dataset.training_count} training images)")
    print(f"  {plan.rounds} round(s) of {plan.local_epochs} local epoch(s), batch {plan.batch_size}, "
          f"{plan.optimiser} at learning rate {plan.learning_rate:g}; at least {plan.min_nodes} hospital(s) a round")
    if cost is not None:
        print(f"  privacy: ε = {cost.epsilon_per_round:.2f} per round, ε = {cost.epsilon_total:.2f} in total, "
              f"δ = {cost.delta:g} (noise multiplier {cost.noise_multiplier:.3g})")
    elif not plan.dp.enabled:
        print("  privacy: NO differential privacy")
    spent, held = node.ledger.spent(dataset.id), node.approvals.reserved(dataset.id, excluding=plan.sha256)
    print(f"  this dataset has spent ε = {spent:.2f} so far and other approved plans may still spend ε = {held:.2f} "
          f"(cap ε = {node.policy.get().epsilon_cap_per_dataset:g})")
    print(f"  secure aggregation: {'on' if plan.secure_aggregation else 'OFF'}")
    print("  leaves this machine: model updates" + (" (masked by secure aggregation)" if plan.secure_aggregation
                                                   else "") + " and the number of training images; no image, "
          "file name or per-image value")
    violations = plan_violations(node.policy.get(), plan, epsilon_total if plan.dp.enabled else None)
    for reason in violations:
        print(f"  OUTSIDE POLICY: {reason}")
    if not violations:
        print("  within this node's policy")
    return epsilon_total


def _load_plan(node: NodeService, actor: UserSession, given: str) -> TrainingPlan:
    from pneumodesk.federation.plan import TrainingPlan
    from pneumodesk.node import ApprovalError

    path = Path(given)
    if path.is_file():
        return TrainingPlan.from_json_bytes(path.read_bytes())
    sha = _known_sha(node, actor, given)
    for approval in node.approvals.list(actor):
        if approval.plan_sha256 == sha:
            return approval.plan
    raise ApprovalError(f"{given!r} is neither a plan file nor the hash of a plan this node has seen; give the "
                        "plan's JSON file.")


def _known_sha(node: NodeService, actor: UserSession, prefix: str) -> str | None:
    from pneumodesk.node import ApprovalError

    prefix = prefix.strip().lower()
    matches = {a.plan_sha256 for a in node.approvals.list(actor) if a.plan_sha256.startswith(prefix)}
    if len(matches) > 1:
        raise ApprovalError(f"The hash prefix {prefix!r} matches several plans; give more of it.")
    return next(iter(matches), None) if len(prefix) >= 6 else None


def _enrolled_coordinator(node: NodeService) -> str:
    from pneumodesk.node import ApprovalError

    membership = node.membership.get()
    if membership is None:
        raise ApprovalError("This node is not enrolled with a federation; give --coordinator URL.")
    return membership.coordinator_url


# --- models ---
def _performance(node: NodeService, actor: UserSession) -> int:
    from pneumodesk.client.confirmed_cases import monitor_confirmed
    from pneumodesk.node import Permission

    node.accounts.require(actor, Permission.APPROVE_TRAINING, "local performance")
    report = monitor_confirmed(node)
    print(f"Model {report.model_version} on this month's confirmed cases (95 % Wilson intervals):")
    for figure in (report.sensitivity, report.specificity):
        print(f"  {figure.sentence()}{'  ← below the card' if figure.drifted else ''}")
    if report.refused:
        print(f"  {report.refused} confirmed image(s) changed, moved or unreadable, left out")
    warning = report.warning()
    if warning is not None:
        print(warning, file=sys.stderr)
        return 3
    return 0


def models_command(args: argparse.Namespace) -> int:
    return run_node_command("models", _models, args)


def _models(args: argparse.Namespace) -> int:
    with signed_in(args) as (node, actor):
        registry = node.models
        if args.models_command == "list":
            node.accounts.require_signed_in(actor)
            for m in registry.list():
                auc = m.metrics.get("roc_auc")
                base = m.baseline_metrics.get("roc_auc")
                figures = "" if auc is None else f"  AUC {auc:.3f}" + ("" if base is None else f" (was {base:.3f})")
                print(f"{m.id:>3}  {m.status:<9} {m.model_version}  {m.architecture}  {m.source}{figures}")
            return 0
        if args.models_command == "performance":
            return _performance(node, actor)
        action = {"accept": registry.accept, "reject": registry.reject, "restore": registry.restore}
        model = action[args.models_command](actor, args.model_id)
        verb = {"accept": "Accepted", "reject": "Rejected", "restore": "Restored"}[args.models_command]
        print(f"{verb} model {model.id} ({model.model_version}); the prediction model is now model "
              f"{registry.active().id}.")
    return 0
