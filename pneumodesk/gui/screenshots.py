"""``pneumodesk gui --screenshots DIR``: run the app on the bundled samples and save each page as a PNG.

It uses a throw-away app home, so a user's settings, verdicts and node store are neither read nor changed. In that
home it creates a demo Owner (and a few demo accounts) with random passwords that are never shown or kept: there is
no default password, and the demo store is deleted with the folder.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop, QMessageLogContext, QTimer, QtMsgType, SignalInstance, qInstallMessageHandler
from PySide6.QtWidgets import QApplication, QWidget

from .verdicts import AGREE, DISAGREE

if TYPE_CHECKING:
    from pneumodesk.federation import TrainingPlan
    from pneumodesk.node import UserSession

    from .main_window import MainWindow

SIZE = (1440, 900)


class ScreenshotError(RuntimeError):
    """The app did not reach the state a screenshot needs (e.g. the model failed to load)."""


def wait_for(signal: SignalInstance, timeout_ms: int = 120_000) -> tuple:
    """Run the event loop until ``signal`` fires; returns its arguments. Raises ``ScreenshotError`` on timeout."""
    loop = QEventLoop()
    received: list[tuple] = []

    def done(*args: object) -> None:
        received.append(args)
        loop.quit()

    signal.connect(done)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    signal.disconnect(done)
    if not received:
        raise ScreenshotError("Timed out waiting for the app.")
    return received[0]


def _settle(widget: QWidget) -> None:
    for _ in range(3):
        QApplication.processEvents()
    widget.repaint()


def _save(widget: QWidget, path: Path) -> Path:
    _settle(widget)
    if not widget.grab().save(str(path), "PNG"):
        raise ScreenshotError(f"Could not write {path}.")
    return path


def _quiet_offscreen(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    """Drop the offscreen platform's harmless notice about window size hints; print everything else."""
    if "propagateSizeHints" not in message:
        print(message, file=sys.stderr)


DEMO_ACCOUNTS = (
    ("a.reader", "Dr A. Reader", "Clinician"),
    ("r.search", "R. Search", "Researcher"),
    ("c.officer", "C. Officer", "Compliance officer"),
    ("i.admin", "I. T. Admin", "Administrator"),
)


def _demo_owner_session(home: Path) -> UserSession:
    """Sign in a demo Owner in the throw-away ``home`` (random, discarded passwords) and add demo accounts."""
    from pneumodesk.node import AuthenticationFailed, NodeService

    node = NodeService.open(home)
    try:
        password = secrets.token_urlsafe(24)
        node.accounts.create_owner("demo.owner", "Demo Owner", password)
        owner = node.accounts.authenticate("demo.owner", password)
        for username, display_name, role in DEMO_ACCOUNTS:
            node.accounts.create_account(owner, username, display_name, role, secrets.token_urlsafe(24))
        node.accounts.set_disabled(owner, "r.search", True)
        for _ in range(2):  # failed sign-ins, for the Audit page to show
            with contextlib.suppress(AuthenticationFailed):
                node.accounts.authenticate("a.reader", "not the password")
        return owner
    finally:
        node.close()


def _demo_dataset(folder: Path, per_class: int = 100) -> Path:
    """NORMAL/ and PNEUMONIA/ folders of real X-rays from the shipped 28-px demo data (validation split, enlarged to
    64 px), named by their anonymous patient number, plus one file that is not an image (for the "could not be read"
    list)."""
    import numpy as np
    from PIL import Image

    from pneumodesk.model.default import RESOURCES

    demo = RESOURCES / "demo" / "pneumonia_demo_28.npz"
    if not demo.is_file():
        raise ScreenshotError(f"The demo X-rays for the admin screenshots are missing ({demo}).")
    with np.load(demo) as data:
        images, labels, groups = data["val_images"], data["val_labels"].ravel(), data["val_groups"]
    for label, name in enumerate(("NORMAL", "PNEUMONIA")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(labels == label)[:per_class]:
            image = Image.fromarray(images[i]).resize((64, 64), Image.Resampling.BILINEAR)  # readers need ≥ 32 px
            image.save(folder / name / f"person{groups[i]}_{i}.png")
    (folder / "PNEUMONIA" / "scan notes.png").write_text("not an image")
    return folder


def _demo_plan(window: MainWindow) -> TrainingPlan:
    from pneumodesk.federation import TrainingPlan

    card = window.predictor.card if window.predictor is not None else None
    return TrainingPlan.model_validate({
        "name": "Paediatric pneumonia refresh", "description": "Ten rounds of federated fine-tuning with DP-SGD.",
        "architecture": card.architecture if card else "pneumonet-tiny", "input_size": card.input_size if card else 64,
        "base_model_sha256": card.weights_sha256 if card else "0" * 64, "learning_rate": 0.05, "batch_size": 16,
        "local_epochs": 1, "rounds": 10, "min_nodes": 3, "secure_aggregation": True,
        "dp": {"enabled": True, "target_epsilon": 8.0},
    })


def _pacs_screenshot(window: MainWindow, out: Path) -> Path:
    """The PACS page with a demo DIMSE connection and made-up search results (no PACS is contacted)."""
    from pneumodesk.pacs.query import SeriesRow
    from pneumodesk.pacs.settings import DimseSettings, PacsConnection, Protocol

    session = window.session
    if session is None:
        raise ScreenshotError("The demo Owner is not signed in.")
    window.pacs.connections.save(session, PacsConnection("Radiology PACS", Protocol.DIMSE, dimse=DimseSettings(
        "pacs.hospital.example", 104, "RADPACS")))
    window.show_page("PACS")
    page = window.query_page
    page.refresh()
    page.date_from.setText("2026-12-03")
    page.date_to.setText("2026-12-03")
    page.body_part.setText("CHEST")
    demo = [SeriesRow(f"1.2.826.0.1.{n}", f"1.2.826.0.1.{n}.1", f"DEMO-{1000 + n}", name, "20261203", f"ACC{500 + n}",
                      modality, "CHEST", description, count)
            for n, (name, modality, description, count) in enumerate([
                ("Demo Patient A", "CR", "Chest PA", 1), ("Demo Patient B", "DX", "Chest PA and lateral", 2),
                ("Demo Patient C", "CR", "Chest AP portable", 1), ("Demo Patient D", "DX", "Chest PA", 1)])]
    page._on_found(demo)
    page.table.selectRow(1)
    return _save(window, out / "pacs-query.png")


DEMO_ROUNDS = ((1, 0.25, 1.1), (2, 0.12, 0.8), (3, 0.04, 0.7))  # (round, weight noise, ε spent)


def _demo_federation_history(window: MainWindow, dataset_id: int, plan: TrainingPlan, home: Path) -> None:
    """Three rounds of the demo plan, as the node store would hold them after real ones: a candidate per round
    checked on the demo dataset's validation split beside the model in use (real evaluations of the model in use,
    its weights more or less perturbed to stand for the global models), the requests sent for each round, and the
    privacy ledger's entries, backdated over the past days (rows are appended, as the ledger does)."""
    import datetime as dt

    import torch

    from pneumodesk.model import load_bundle
    from pneumodesk.node.models import LedgerRow
    from pneumodesk.training.acceptance import candidate_bundle, evaluate_bundle_locally

    node = window.node
    active = load_bundle(node.models.active_bundle_dir())
    validation = node.datasets.files(dataset_id, "validation")
    baseline = evaluate_bundle_locally(active, validation)
    generator = torch.Generator().manual_seed(0)
    now = dt.datetime.now(dt.UTC)
    weights_bytes = sum(t.numel() * t.element_size() for t in active.state_dict.values())
    for round_number, noise, epsilon in DEMO_ROUNDS:
        state = {name: (t + noise * t.std() * torch.randn(t.shape, generator=generator)
                        if t.is_floating_point() and t.numel() > 1 else t.clone())
                 for name, t in active.state_dict.items()}
        folder, metrics = candidate_bundle(state, active, validation, home / f"demo-candidate-{round_number}",
                                           version=f"federated-v{round_number}",
                                           training={"plan_sha256": plan.sha256, "round": round_number})
        node.models.add_candidate(folder, f"federation plan {plan.sha256[:12]}", plan.sha256, round_number,
                                  round_number, metrics, baseline)
        round_id = 40 + round_number
        for endpoint, sent in ((f"/api/v1/rounds/{round_id}/secagg/keys", 2_400),
                               (f"/api/v1/rounds/{round_id}/update", weights_bytes + 900)):
            node.egress.record("PUT", endpoint, sent, 300, 200, "upload")
        with node.store.session() as session:
            session.add(LedgerRow(time=now - dt.timedelta(days=2 * (len(DEMO_ROUNDS) - round_number) + 1),
                                  dataset_id=dataset_id, plan_sha256=plan.sha256, round_number=round_number,
                                  epsilon=epsilon, delta=1e-5, noise_multiplier=1.1, sample_rate=0.1, steps=40))


def _record_demo_readings(window: MainWindow) -> None:
    """Read every predicted sample as its file name says (the bundled samples are named ``normal-…`` and
    ``pneumonia-…``): agree (A) when the model said so, else disagree (D), then the reading (N or P)."""
    from pneumodesk.node.readings import Reading

    page = window.predict_page
    for proxy_row in range(page.proxy.rowCount()):
        page.select_proxy_row(proxy_row)
        item = page.model.entry(page.current_row())
        if item.prediction is None:
            continue
        truth = Reading.PNEUMONIA if item.name.lower().startswith("pneumonia") else Reading.NORMAL
        page.set_verdict(AGREE if item.prediction.is_pneumonia == (truth is Reading.PNEUMONIA) else DISAGREE)
        page.set_reading(truth)


def _reading_screenshot(window: MainWindow, out: Path) -> Path:
    """The viewer after a verdict and a reading (N / P / U), with every sample read."""
    _record_demo_readings(window)
    page = window.predict_page
    page.select_proxy_row(0)
    if page.shown is None or page.shown[0] != page.current_row():
        wait_for(page.image_shown)
    return _save(window, out / "viewer-reading.png")


#: Acquisition shifts (``pneumodesk.training.shifts``) applied to each shipped sample for the demo confirmed cases:
#: with the 8 samples themselves, 7 images of each sample, 28 of each class — above the recalibration floor.
DEMO_CONFIRMED_SHIFTS = ("brightness +0.15", "brightness −0.15", "contrast ×0.6", "contrast ×1.5", "crop 10 %",
                         "noise σ 0.04")
DEMO_CONFIRMED_SIZE = 512  # longest side of the written variants (px): enough for the model, quick to read


def _demo_confirmed_variants(window: MainWindow, folder: Path) -> int:
    """Variants of the shipped samples (``DEMO_CONFIRMED_SHIFTS``, written as PNG in the throw-away ``folder``), each
    read as its sample's file name says, recorded as the demo Owner's readings; returns how many."""
    import hashlib

    import numpy as np
    from PIL import Image

    from pneumodesk.imaging import is_supported_file, read_xray
    from pneumodesk.model.default import samples_path
    from pneumodesk.node.readings import Reading
    from pneumodesk.training.shifts import shift_by_name

    session = window.session
    if session is None:
        raise ScreenshotError("The demo Owner is not signed in.")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    written = 0
    for sample in sorted(p for p in samples_path().iterdir() if is_supported_file(p)):
        truth = Reading.PNEUMONIA if sample.name.lower().startswith("pneumonia") else Reading.NORMAL
        pixels = read_xray(sample).pixels
        for number, name in enumerate(DEMO_CONFIRMED_SHIFTS):
            shifted = shift_by_name(name)(pixels, rng)
            image = Image.fromarray(np.round(shifted * 255).astype(np.uint8))
            image.thumbnail((DEMO_CONFIRMED_SIZE, DEMO_CONFIRMED_SIZE), Image.Resampling.BILINEAR)
            path = folder / f"{sample.stem}-variant{number}.png"
            image.save(path)
            window.node.readings.record(session, hashlib.sha256(path.read_bytes()).hexdigest(), path, truth)
            written += 1
    return written


def _confirmed_cases_screenshots(window: MainWindow, out: Path, home: Path) -> list[Path]:
    """The readings (the samples' and their variants', enough to pass the recalibration floor) registered as the
    Confirmed cases dataset (Datasets page), then the prediction model recalibrated on them: the candidate's figures
    beside the current thresholds' (before / after) and this month's monitoring line (Models page)."""
    written: list[Path] = []
    _demo_confirmed_variants(window, home / "demo-confirmed")
    window.show_page("Datasets")
    datasets = window.datasets_page
    datasets.refresh()
    if datasets.calls.busy:
        wait_for(datasets.calls.busy_changed)
    if datasets.register_confirmed() and not wait_for(datasets.registration_finished)[0]:
        raise ScreenshotError(f"The confirmed cases were not registered: {datasets.message.text()}")
    datasets.table.selectRow(datasets.table.rowCount() - 1)
    written.append(_save(window, out / "confirmed-cases.png"))
    window.show_page("Models")
    models = window.models_page
    models.refresh()
    if models.calls.busy:
        wait_for(models.calls.busy_changed)
    if models.recalibrate() and not wait_for(models.recalibration_finished)[0]:
        raise ScreenshotError(f"The model was not recalibrated: {models.message.text()}")
    if models.monitor_calls.busy:
        wait_for(models.monitor_calls.busy_changed)
    written.append(_save(window, out / "recalibration.png"))
    return written


def _admin_screenshots(window: MainWindow, out: Path, home: Path) -> list[Path]:
    """Datasets (a registered demo dataset), a plan under review, Training, Models (with the curves of a candidate
    and the model in use), its candidate's model card and Federation."""
    written: list[Path] = []
    session = window.session
    if session is None:
        raise ScreenshotError("The demo Owner is not signed in.")
    dataset = window.node.datasets.register(session, "Demo X-rays (paediatric)", _demo_dataset(home / "demo-data"))
    window.show_page("Datasets")
    window.datasets_page.refresh()
    window.datasets_page.unreadable.expandAll()
    written.append(_save(window, out / "datasets.png"))
    window.show_page("Training")
    plan = _demo_plan(window)
    dialog = window.approvals_page.review_plan(plan, "https://coordinator.example.org:8443")
    if dialog is not None:
        if dialog.cost_pending:
            wait_for(dialog.reviewed)
        dialog.resize(820, 760)
        written.append(_save(dialog, out / "plan-review.png"))
        dialog.approve()
        dialog.close()
    _demo_federation_history(window, dataset.id, plan, home)
    window.approvals_page.refresh()
    written.append(_save(window, out / "training.png"))
    window.show_page("Models")
    models = window.models_page
    models.refresh()
    if models.calls.busy:
        wait_for(models.calls.busy_changed)
    newest = models.models[0]
    models.select(newest.id)
    written.append(_save(window, out / "models.png"))
    from pneumodesk.model import load_bundle

    from .dialogs.help import ModelCardDialog

    card = ModelCardDialog(load_bundle(newest.bundle_dir).card, window)
    card.show()
    written.append(_save(card, out / "model-card-curves.png"))
    card.close()
    window.show_page("Federation")
    charts = window.federation_page.round_charts
    if charts.calls.busy:
        wait_for(charts.calls.busy_changed)
    written.append(_save(window, out / "federation.png"))
    written += _confirmed_cases_screenshots(window, out, home)
    return written


def take_screenshots(out: Path, model: Path | None = None) -> list[Path]:
    """Write worklist, worklist filtered by a histogram bin, viewer (heat map), viewer with a reading, model card,
    PACS query, settings, shortcuts, accounts, audit, datasets, plan review, training, models, a candidate's model
    card with its curves, federation, the confirmed cases dataset, a recalibration (before / after) and sign-in
    PNGs."""
    previous = qInstallMessageHandler(_quiet_offscreen)
    try:
        return _take_screenshots(out, model)
    finally:
        qInstallMessageHandler(previous)


def _take_screenshots(out: Path, model: Path | None) -> list[Path]:
    from .main_window import MainWindow

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="pneumodesk-screens-") as home:
        session = _demo_owner_session(Path(home))
        window = MainWindow(home=Path(home), bundle=model, session=session)
        try:  # any failure below still joins the window's worker threads before the folder goes
            written += _screenshots_of(window, out, Path(home))
        finally:
            window.close()
    return written


def _screenshots_of(window: MainWindow, out: Path, home: Path) -> list[Path]:
    from pneumodesk.model.default import samples_path

    written: list[Path] = []
    window.resize(*SIZE)
    window.show()
    outcome: dict[str, str] = {}
    window.model_failed.connect(lambda message: outcome.setdefault("error", message))
    if window.predictor is None:
        loop_signal = QEventLoop()
        window.model_loaded.connect(loop_signal.quit)
        window.model_failed.connect(loop_signal.quit)
        QTimer.singleShot(120_000, loop_signal.quit)
        loop_signal.exec()
    if window.predictor is None:
        raise ScreenshotError(f"The model did not load: {outcome.get('error', 'timed out')}")
    page = window.predict_page
    page.add_paths([samples_path()])
    if page.batch_running:
        wait_for(page.batch_finished)
    page.select_proxy_row(0)
    if page.shown is None:
        wait_for(page.image_shown)
    page.set_verdict(AGREE)
    page.update_histogram()
    written.append(_save(window, out / "worklist.png"))
    page.viewer.overlay.setChecked(True)
    written.append(_save(window, out / "viewer-heatmap.png"))
    counts = page.histogram.histogram.counts
    page.histogram.select_bin(max(range(len(counts)), key=counts.__getitem__))  # the worklist shows that bin
    page.select_proxy_row(0)
    if page.shown is None or page.shown[0] != page.current_row():
        wait_for(page.image_shown)
    written.append(_save(window, out / "worklist-histogram-filter.png"))
    page.histogram.select_bin(-1)
    written.append(_reading_screenshot(window, out))
    card = window.show_model_card()
    if card is not None:
        card.resize(820, 760)
        written.append(_save(card, out / "model-card.png"))
        card.close()
    shortcuts = window.show_shortcuts()
    written.append(_save(shortcuts, out / "shortcuts.png"))
    shortcuts.close()
    written.append(_pacs_screenshot(window, out))
    window.show_page("Settings")
    written.append(_save(window, out / "settings.png"))
    window.show_page("Accounts")
    window.accounts_page.refresh()
    window.accounts_page.select("a.reader")
    written.append(_save(window, out / "accounts.png"))
    window.show_page("Audit")
    window.audit_page.set_session(window.session)
    window.audit_page.verify()
    written.append(_save(window, out / "audit.png"))
    written += _admin_screenshots(window, out, home)
    window.sign_out()
    written.append(_save(window, out / "sign-in.png"))
    return written
