"""What the clinicians' confirmed cases are used for on this node: recalibrating the prediction model's operating
points on them (offered as a candidate, accepted on the Models page like any other) and watching the prediction
model's sensitivity and specificity on this month's confirmed cases against its model card.

Invariants: the weights never change here, only temperature and thresholds; nothing of this leaves the node; a
confirmed image whose file changed or vanished is left out (counted as refused), never read as another image.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pneumodesk.node.errors import RegisteredDatasetError
from pneumodesk.node.model_registry import RECALIBRATION_SOURCE
from pneumodesk.node.permissions import Permission

if TYPE_CHECKING:
    from pneumodesk.node import NodeService, UserSession
    from pneumodesk.node.model_registry import LocalModel
    from pneumodesk.training.monitoring import LocalPerformance
    from pneumodesk.training.recalibration import LocalRecalibration


@dataclass(frozen=True)
class RecalibrationOffer:
    candidate: LocalModel  # status candidate: accept it on the Models page
    recalibration: LocalRecalibration  # before / after figures on the confirmed images
    refused: list[tuple[Path, str]]  # confirmed images left out, with the reason


def month_start(now: dt.datetime | None = None) -> dt.datetime:
    """Midnight UTC on the first day of ``now``'s month."""
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def recalibrate_on_confirmed(node: NodeService, actor: UserSession, *, command: str = "") -> RecalibrationOffer:
    """Refit the prediction model's calibration and operating points on every usable image of the latest confirmed
    cases dataset and add the result as a candidate (``approve_training``; audited with counts)."""
    import numpy as np

    from pneumodesk.model import load_bundle
    from pneumodesk.training.recalibration import recalibrate_on_images, require_enough_cases

    node.accounts.require(actor, Permission.APPROVE_TRAINING, "recalibration")
    dataset = node.confirmed_cases.latest(actor)
    if dataset is None:
        raise RegisteredDatasetError("There is no confirmed cases dataset yet: register one on the Datasets page.")
    files: list[tuple[Path, int]] = []
    refused: list[tuple[Path, str]] = []
    for split in ("training", "validation"):
        usable, left_out = node.datasets.checked_files(dataset.id, split)
        files += usable
        refused += left_out
    # Refused before any image is read or model loaded (recalibrate_on_images checks again what it could read).
    require_enough_cases(np.array([label for _, label in files]), what="confirmed", where="this workstation",
                         left_out=len(refused))
    active = node.models.active()
    bundle = load_bundle(active.bundle_dir)
    version = f"{bundle.card.version}+local-{dt.datetime.now(dt.UTC):%Y%m%d%H%M}"
    with tempfile.TemporaryDirectory(prefix="pneumodesk-recalibration-") as folder:
        result = recalibrate_on_images(bundle, files, Path(folder) / "bundle", version=version,
                                       source=f"this hospital's confirmed cases (dataset {dataset.id})",
                                       command=command)
        candidate = node.models.add_candidate(Path(folder) / "bundle", RECALIBRATION_SOURCE, None, None, None,
                                              {**result.after, "curves": result.curves_after},
                                              {**result.before, "curves": result.curves_before})
    node.audit.append(actor.username, "recalibration_offered", f"model {candidate.id}", details={
        "dataset": dataset.id, "images": int(result.after["images"]), "refused": len(refused) + result.unreadable,
        "from_model": active.id,
    })
    return RecalibrationOffer(candidate, result, refused)


def monitor_confirmed(node: NodeService, *, since: dt.datetime | None = None,
                      progress: Callable[[int], None] | None = None) -> LocalPerformance:
    """The prediction model's sensitivity and specificity (default operating point) on the cases confirmed since
    ``since`` (default: this month), against its card's figures for that operating point."""
    import numpy as np

    from pneumodesk.model import load_bundle
    from pneumodesk.training.datasets import load_model_inputs
    from pneumodesk.training.monitoring import local_performance
    from pneumodesk.training.trainer import predict_logits

    readings = node.readings.confirmed(month_start() if since is None else since)
    usable = [r for r in readings if node.datasets.changed_file_problem(r.path, r.digest) is None]
    bundle = load_bundle(node.models.active_bundle_dir())
    card = bundle.card
    _, point = card.operating_point(None)
    refused = len(readings) - len(usable)
    if not usable:
        return local_performance(np.zeros(0), np.zeros(0), point.sensitivity, point.specificity, card.version,
                                 refused)
    inputs, unreadable = load_model_inputs([r.path for r in usable], card.input_size, progress=progress)
    bad = {path for path, _ in unreadable}
    labels = np.array([r.reading.label for r in usable if r.path not in bad], dtype=np.int64)
    probabilities = card.calibrate(predict_logits(bundle.build(), inputs)) if len(inputs) else np.zeros(0)
    return local_performance(labels, probabilities >= point.threshold, point.sensitivity, point.specificity,
                             card.version, refused + len(unreadable))
