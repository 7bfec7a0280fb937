"""A new global model becomes a local *candidate*: downloaded (sha256 checked), checked and calibrated on the
approved dataset's validation split, compared with the model in use, and added to the node's model registry, where
an admin accepts or rejects it. Nothing here changes the model in use.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pneumodesk.federation.plan import TrainingPlan

from .api import CoordinatorClient
from .eligibility import approved_plan
from .global_model import checked_global_model

if TYPE_CHECKING:
    from pneumodesk.model import ModelCard
    from pneumodesk.node import NodeService


def build_candidate(service: NodeService, client: CoordinatorClient, home: Path, plan_sha256: str, version: int,
                    round_number: int) -> int | None:
    """Add global model ``version`` as a candidate; its local model id, or None when the plan's approval was
    withdrawn meanwhile (nothing more is done for that plan). Errors of the local check propagate."""
    import torch

    from pneumodesk.model import load_bundle
    from pneumodesk.training.acceptance import candidate_bundle, evaluate_bundle_locally

    approved = approved_plan(service, plan_sha256)
    if approved is None:
        return None
    approval, plan = approved
    data = client.weights(version, architecture=plan.architecture)
    arrays = checked_global_model(data, plan, f"Global model version {version}")  # nothing odd enters the registry
    state = {k: torch.from_numpy(v.copy()) for k, v in arrays.items()}
    validation = service.datasets.files(approval.dataset_id, "validation")
    base = base_card(service, plan)
    out = Path(home) / "federation" / "candidates" / f"{plan_sha256[:16]}-v{version}"
    if out.exists():
        shutil.rmtree(out)
    folder, metrics = candidate_bundle(
        state, base, validation, out, version=f"federated-v{version}",
        training={"plan_sha256": plan_sha256, "global_version": version, "round": round_number, "federated": True})
    baseline: dict[str, Any]
    try:
        active = load_bundle(service.models.active_bundle_dir())
        baseline = evaluate_bundle_locally(active, validation)
    except Exception as error:  # the current model may not load (e.g. removed file): say so beside the figures
        baseline = {"error": f"the current model could not be evaluated ({error})"}
    model = service.models.add_candidate(folder, source=f"federation plan {plan_sha256[:12]}",
                                         plan_sha256=plan_sha256, round_number=round_number, global_version=version,
                                         metrics=metrics, baseline_metrics=baseline)
    shutil.rmtree(out, ignore_errors=True)  # the registry keeps its own copy
    return int(model.id)


def base_card(service: NodeService, plan: TrainingPlan) -> ModelCard:
    """A card describing the plan's architecture: the active model's when it matches, else a minimal one."""
    from pneumodesk.imaging import PREPROCESSING_VERSION
    from pneumodesk.model import ModelCard, OperatingPoint, load_bundle

    try:
        active = load_bundle(service.models.active_bundle_dir()).card
        if active.architecture == plan.architecture and active.input_size == plan.input_size:
            return active
    except Exception:  # no usable active model: describe the plan's architecture from scratch
        pass
    return ModelCard(name=f"PneumoDesk federated model ({plan.name})", version="0", architecture=plan.architecture,
                     input_size=plan.input_size, preprocessing_version=PREPROCESSING_VERSION, temperature=1.0,
                     operating_points={"balanced": OperatingPoint(0.5, 0.0, 0.0)},
                     default_operating_point="balanced", validation={}, training={},
                     intended_use="Decision support for pneumonia on chest X-rays; not a diagnosis.",
                     limitations=[], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
