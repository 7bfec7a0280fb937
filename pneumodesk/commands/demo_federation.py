"""The body of ``pneumodesk demo federation`` (see ``commands/demo.py`` for what it does and why)."""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the client, the node stack and torch load only when the demo runs
    from pneumodesk.client import EngineOptions, EngineStatus, ParticipationEngine
    from pneumodesk.client.api import CoordinatorClient
    from pneumodesk.client.local_federation import LocalHospital
    from pneumodesk.client.secure_upload import SecureUpload
    from pneumodesk.client.upload import PreparedUpdate
    from pneumodesk.federation.messages import RoundInfo, UploadReceipt
    from pneumodesk.federation.plan import TrainingPlan


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Shares:
    """Each hospital's dataset source (folder or CSV) and the global validation files no hospital trains on."""

    sources: list[Path]
    validation: list[tuple[Path, int]]
    description: str


def _write_png(path: Path, pixels: np.ndarray) -> None:
    """A PNG at twice the size (each pixel repeated 2×2): 28-px npz images are below the smallest side PneumoDesk
    reads as an X-ray (imaging.limits.MIN_SIDE); preprocessing to 28 px averages the copies back."""
    from PIL import Image

    grey = np.asarray(pixels, dtype=np.uint8)
    Image.fromarray(np.kron(grey, np.ones((2, 2), dtype=np.uint8))).save(path)


def _shares_from_npz(path: Path, hospitals: int, root: Path, seed: int) -> Shares:
    """Write each hospital's non-IID share of the npz's training split as NORMAL/PNEUMONIA PNG folders (named by
    patient, so the node's validation split keeps patients whole) and the npz's validation split once."""
    from pneumodesk.training.datasets import TrainingDataError
    from pneumodesk.training.demo_data import non_iid_shares

    try:
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise TrainingDataError(f"{path} cannot be read as an npz file ({error}).") from None
    needed = ("train_images", "train_labels", "val_images", "val_labels")
    if any(key not in arrays for key in needed):
        raise TrainingDataError(f"{path} is not in the PneumoniaMNIST layout ({', '.join(needed)}).")
    labels = arrays["train_labels"].reshape(-1).astype(np.int64)
    groups = arrays.get("train_groups", np.arange(len(labels))).reshape(-1).astype(np.int64)
    sources = []
    for hospital, indices in enumerate(non_iid_shares(labels, groups, hospitals, seed=seed)):
        folder = root / f"hospital-{hospital}-images"
        for name in ("NORMAL", "PNEUMONIA"):
            (folder / name).mkdir(parents=True)
        for i in indices:
            name = ("NORMAL", "PNEUMONIA")[labels[i]]
            _write_png(folder / name / f"person{groups[i]}_{name.lower()}_{i}.png", arrays["train_images"][i])
        sources.append(folder)
    validation_dir = root / "validation-images"
    validation_dir.mkdir()
    validation = []
    for i, (image, label) in enumerate(zip(arrays["val_images"], arrays["val_labels"].reshape(-1), strict=True)):
        file = validation_dir / f"val_{i}.png"
        _write_png(file, image)
        validation.append((file, int(label)))
    return Shares(sources, validation, f"{path.name}: {len(labels)} training images shared out, "
                                       f"{len(validation)} validation images")


def _shares_from_folder(path: Path, hospitals: int, root: Path, seed: int) -> Shares:
    """A patient-grouped 1/7 of the folder for validation; the rest dealt out non-IID as one CSV per hospital
    (absolute paths into the folder: nothing copied)."""
    from pneumodesk.imaging import is_supported_file
    from pneumodesk.imaging.patient_groups import patient_group
    from pneumodesk.training.datasets import TrainingDataError
    from pneumodesk.training.demo_data import non_iid_shares
    from pneumodesk.training.split import grouped_split

    files: list[tuple[Path, int]] = []
    for label, name in enumerate(("NORMAL", "PNEUMONIA")):
        folder = path / name
        if not folder.is_dir():
            raise TrainingDataError(f"{path} has no {name} folder.")
        files += [(p.resolve(), label) for p in sorted(folder.rglob("*")) if p.is_file() and is_supported_file(p)]
    labels = np.array([label for _, label in files], dtype=np.int64)
    names = [patient_group(p.name) for p, _ in files]
    train, validation = grouped_split(labels, names, seed=seed, folds=7)
    ids = {name: number for number, name in enumerate(sorted(set(names)))}
    groups = np.array([ids[n] for n in names], dtype=np.int64)
    sources = []
    for hospital, share in enumerate(non_iid_shares(labels[train], groups[train], hospitals, seed=seed)):
        sheet = root / f"hospital-{hospital}.csv"
        with sheet.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "label"])
            for index in train[share]:
                writer.writerow([str(files[index][0]), files[index][1]])
        sources.append(sheet)
    return Shares(sources, [files[i] for i in validation],
                  f"{path}: {len(train)} training images shared out, {len(validation)} validation images")


def _initial_bundle(out: Path, architecture: str, input_size: int, seed: int) -> Path:
    """A freshly initialised model (fixed seed) with a card: the plan's starting point, model version 1."""
    import torch

    from pneumodesk.imaging import PREPROCESSING_VERSION
    from pneumodesk.model import ModelBundle, ModelCard, OperatingPoint, build_model

    torch.manual_seed(seed)
    card = ModelCard(
        name="PneumoDesk federation demo model", version="demo-initial", architecture=architecture,
        input_size=input_size, preprocessing_version=PREPROCESSING_VERSION, temperature=1.0,
        operating_points={"balanced": OperatingPoint(0.5, 0.0, 0.0, "untrained")},
        default_operating_point="balanced", validation={}, training={"data": "none: random initialisation"},
        intended_use="Demonstration of federated training only; not for clinical use.",
        limitations=["randomly initialised"], created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    ModelBundle.from_model(build_model(architecture), card).save(out)
    return out


def _auc(state: dict[str, Any], architecture: str, inputs: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    from pneumodesk.model import build_model
    from pneumodesk.training.trainer import predict_logits

    model = build_model(architecture)
    model.load_state_dict(state, strict=True)
    return float(roc_auc_score(labels, predict_logits(model, inputs)))


@contextlib.contextmanager
def _workdir(chosen: Path | None) -> Iterator[Path]:
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        yield chosen
        return
    with tempfile.TemporaryDirectory(prefix="pneumodesk-demo-") as folder:
        yield Path(folder)


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_federation_demo(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from pneumodesk.client.local_federation import LocalCoordinator, LocalHospital, run_engines
    from pneumodesk.client.participation import EngineOptions, EngineStage
    from pneumodesk.federation.plan import DifferentialPrivacy, TrainingPlan
    from pneumodesk.federation.tensors import state_dict_from_bytes
    from pneumodesk.federation.vocabulary import RoundState
    from pneumodesk.training.datasets import TrainingDataError
    from pneumodesk.training.demo_data import DEMO_ARCHITECTURE, DEMO_INPUT_SIZE, demo_npz_path
    from pneumodesk.training.local_round import load_training_arrays, train_local_round
    from pneumodesk.training.privacy import plan_privacy_cost

    epsilon = args.dp_epsilon if args.dp_epsilon and args.dp_epsilon > 0 else None
    data = Path(args.data) if args.data is not None else demo_npz_path()
    hospitals: list[LocalHospital] = []
    coordinator: LocalCoordinator | None = None
    started = time.perf_counter()
    with _workdir(args.workdir) as root:
        try:
            _say(f"preparing {args.hospitals} hospitals' data from {data}")
            make = _shares_from_folder if data.is_dir() else _shares_from_npz
            shares = make(data, args.hospitals, root, args.seed)
            _say(shares.description)
            if len({label for _, label in shares.validation}) < 2:
                raise TrainingDataError("The validation images are all of one class; ROC-AUC needs both.")
            bundle = _initial_bundle(root / "initial-model", DEMO_ARCHITECTURE, DEMO_INPUT_SIZE, args.seed)
            _say("creating and starting the coordinator (TLS on 127.0.0.1)")
            coordinator = LocalCoordinator.create(root / "coordinator", bundle).start()
            base = coordinator.models()[0]
            plan = TrainingPlan(
                name=f"Demo: {args.hospitals} hospitals, {args.rounds} rounds", architecture=DEMO_ARCHITECTURE,
                input_size=DEMO_INPUT_SIZE, base_model_sha256=base.sha256, optimiser="adam",
                learning_rate=args.learning_rate, batch_size=args.batch_size, local_epochs=args.local_epochs,
                rounds=args.rounds, min_nodes=args.hospitals, round_deadline_seconds=max(600, int(args.timeout)),
                secure_aggregation=args.hospitals >= 2,  # secure aggregation needs at least two hospitals
                dp=DifferentialPrivacy(enabled=epsilon is not None, target_epsilon=epsilon or 8.0))
            for index, source in enumerate(shares.sources):
                _say(f"hospital {index}: account, enrolment, dataset, policy")
                hospital = LocalHospital.create(root / f"hospital-{index}", f"Demo hospital {index}")
                hospitals.append(hospital)
                hospital.enrol(coordinator)
                hospital.register_dataset(source, f"Demo share {index}")
                hospital.set_policy(require_secure_aggregation=args.hospitals >= 2, require_dp=epsilon is not None,
                                    min_nodes_per_round=min(args.hospitals, 3),
                                    epsilon_cap_per_dataset=max(10.0, (epsilon or 0.0) * 1.5),
                                    max_rounds=max(200, args.rounds), max_local_epochs=max(5, args.local_epochs),
                                    max_batch_size=max(512, args.batch_size))
            coordinator.publish(plan)
            datasets = []
            for hospital in hospitals:
                (info,) = hospital.service.datasets.list(hospital.owner)
                datasets.append(info)
                hospital.approve_plan(plan, info.id)
            _say(f"plan {plan.sha256[:12]}… approved by every hospital; running {args.rounds} round(s)")
            training_seconds = [0.0] * len(hospitals)
            vanishing = set(range(args.hospitals - args.drop_after_masking, args.hospitals))
            engines = [_engine(h, plan, EngineOptions(poll_timeout=30, candidates="final"),
                               _progress_printer(i, training_seconds), args.rounds if i in vanishing else None)
                       for i, h in enumerate(hospitals)]
            with _torch_threads(1):  # one intra-op thread per hospital: with more, 2 busy cores thrash (10x slower)
                federated_started = time.perf_counter()
                results = run_engines(engines, timeout=args.timeout)
                federated_seconds = time.perf_counter() - federated_started
            failed = [r.message for i, r in enumerate(results)
                      if r.phase != (EngineStage.STOPPED if i in vanishing else EngineStage.FINISHED)]
            if vanishing:
                _say(f"hospital(s) {', '.join(map(str, sorted(vanishing)))} vanished right after sending their "
                     f"masked input in round {args.rounds}")
            if failed:
                _say("not every hospital finished: " + " | ".join(failed))
            complete = [r for r in coordinator.rounds()
                        if r.plan_sha256 == plan.sha256 and r.state == RoundState.COMPLETE]
            final_version = max((r.result_version for r in complete if r.result_version), default=base.version)

            _say("scoring the federated model and training the centralised one")
            validation_inputs, validation_labels = load_training_arrays(shares.validation, DEMO_INPUT_SIZE)
            final_state = {k: torch.from_numpy(v.copy())
                           for k, v in state_dict_from_bytes(coordinator.weights(final_version)).items()}
            federated_auc = _auc(final_state, DEMO_ARCHITECTURE, validation_inputs, validation_labels)
            union = [f for h, d in zip(hospitals, datasets, strict=True)
                     for f in h.service.datasets.files(d.id, "training")]
            central_inputs, central_labels = load_training_arrays(union, DEMO_INPUT_SIZE)
            central_plan = plan.model_copy(update={"rounds": 1, "local_epochs": args.rounds * args.local_epochs,
                                                   "min_nodes": 1})
            initial = {k: torch.from_numpy(v.copy()) for k, v in state_dict_from_bytes(
                coordinator.weights(base.version)).items()}
            central_cost = plan_privacy_cost(central_plan, len(central_labels))
            with _torch_threads(1):  # as each hospital had
                central_started = time.perf_counter()
                central = train_local_round(initial, central_inputs, central_labels, central_plan, central_cost,
                                            seed=args.seed)
                central_seconds = time.perf_counter() - central_started
            central_auc = _auc(central.state, DEMO_ARCHITECTURE, validation_inputs, validation_labels)

            sent = [h.service.egress.totals().get("bytes_sent", 0) for h in hospitals]
            spent = [h.service.ledger.spent(d.id) for h, d in zip(hospitals, datasets, strict=True)]
            candidates = []
            for hospital, result in zip(hospitals, results, strict=True):
                for model_id in result.candidates:
                    model = hospital.service.models.get(model_id)
                    candidates.append({"hospital": hospital.name, "local_validation_auc": model.metrics.get("roc_auc"),
                                       "current_model_auc": model.baseline_metrics.get("roc_auc")})
            return {
                "hospitals": args.hospitals,
                "rounds_requested": args.rounds,
                "secure_aggregation": plan.secure_aggregation,
                "dropped": len(vanishing),
                "dropped_after_masking_in_round": args.rounds if vanishing else None,
                "contributors_last_round": next((m.contributors for m in coordinator.models()
                                                 if m.version == final_version), None),
                "dp": epsilon is not None,
                "dp_epsilon_target": epsilon,
                "dp_epsilon_spent": round(max(spent), 4) if epsilon is not None else None,
                "dp_epsilon_spent_by_hospital": [round(s, 4) for s in spent],
                "final_model_version": final_version,
                "centralised_validation_auc": round(central_auc, 4),
                "federated_minus_centralised_auc": round(federated_auc - central_auc, 4),
                "validation_images": len(validation_labels),
                "training_images_by_hospital": [d.training_count for d in datasets],
                "pneumonia_share_by_hospital": [round(d.pneumonia / max(1, d.normal + d.pneumonia), 3)
                                                for d in datasets],
                "seconds_per_round": round(federated_seconds / args.rounds, 2),
                "local_training_seconds_per_round": round(sum(training_seconds) / len(hospitals) / args.rounds, 2),
                "centralised_training_seconds": round(central_seconds, 2),
                "bytes_sent_per_hospital": round(sum(sent) / len(sent)),
                "bytes_sent_by_hospital": sent,
                "local_candidates": candidates,
                "architecture": DEMO_ARCHITECTURE,
                "input_size": DEMO_INPUT_SIZE,
                "plan_sha256": plan.sha256,
                "data": str(data),
                "total_seconds": round(time.perf_counter() - started, 1),
                "rounds_completed": len(complete),
                "final_validation_auc": round(federated_auc, 4),
            }
        finally:
            for hospital in hospitals:
                hospital.close(forget_key=True)
            if coordinator is not None:
                coordinator.stop()


def _engine(hospital: LocalHospital, plan: TrainingPlan, options: EngineOptions,
            on_status: Callable[[EngineStatus], None], vanish_in_round: int | None) -> ParticipationEngine:
    """A hospital's participation engine; with ``vanish_in_round`` it leaves right after sending its masked input
    in that round, as if it lost power (its engine ends ``stopped``)."""
    if vanish_in_round is None:
        return hospital.engine(plan.sha256, options=options, on_status=on_status)
    from pneumodesk.client.enrolment import connect
    from pneumodesk.client.participation import ParticipationEngine
    from pneumodesk.client.secure_upload import secure_uploader

    connection = connect(hospital.service, hospital.key_store)
    uploader = _VanishAfterMasking(secure_uploader(hospital.home, connection, plan=plan,
                                                   poll_timeout=options.poll_timeout), vanish_in_round)
    return ParticipationEngine(hospital.service, plan.sha256, home=hospital.home, options=options,
                               on_status=on_status, connection=connection, uploader=uploader)


class _VanishAfterMasking:
    """The secure upload strategy, leaving right after the masked input of round ``number``."""

    name = "secure"

    def __init__(self, inner: SecureUpload, number: int) -> None:
        self.inner, self.number = inner, number

    def deliver(self, client: CoordinatorClient, round_info: RoundInfo, update: PreparedUpdate,
                should_stop: Callable[[], bool]) -> UploadReceipt:
        from pneumodesk.federation.vocabulary import RoundPhase

        self.inner.stop_after = RoundPhase.MASKED_INPUT if round_info.number == self.number else None
        return self.inner.deliver(client, round_info, update, should_stop)


def _progress_printer(index: int, training_seconds: list[float]) -> Callable[[EngineStatus], None]:
    """Prints phase changes to stderr and adds this hospital's time spent training to ``training_seconds[index]``."""
    from pneumodesk.client.participation import EngineStage

    shown: list[tuple[EngineStage, int | None] | None] = [None]
    began: list[float | None] = [None]

    def show(status: EngineStatus) -> None:
        now = time.perf_counter()
        if status.phase == EngineStage.TRAINING and began[0] is None:
            began[0] = now
        elif status.phase != EngineStage.TRAINING and began[0] is not None:
            training_seconds[index] += now - began[0]
            began[0] = None
        key = (status.phase, status.round_number)
        if status.phase in (EngineStage.TRAINING, EngineStage.WAITING, EngineStage.SUBMITTED) and shown[0] == key:
            return
        shown[0] = key
        _say(f"hospital {index}: {status.message}")

    return show
