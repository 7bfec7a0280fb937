"""The Models page (approve_training): the local model registry — the prediction model, new global models waiting
for a decision (candidates) and earlier ones — with a candidate's figures on this hospital's own validation split
beside the current model's, and Accept / Reject / Restore.

Accepting or restoring emits ``active_model_changed``; the main window then reloads the prediction model from
``service.models.active_bundle_dir()``. The registry (in ``pneumodesk.node``) checks the permission and audits.

"Recalibrate on confirmed cases" refits the prediction model's operating points on the clinicians' confirmed cases
and adds the result as a candidate (its figures beside the current thresholds' on the same images: before / after).
Each refresh also measures the prediction model on this month's confirmed cases against its model card and shows a
warning (and emits ``drift_warning``) when a figure is below the card's by more than its 95 % Wilson interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pneumodesk.node import NodeService, Permission
from pneumodesk.node.model_registry import RECALIBRATION_SOURCE, ModelStatus

from ..widgets.fields import message_label, show_message
from ..widgets.model_curves_panel import ModelCurvesPanel
from ..widgets.tables import read_only_table
from ..workers.background import BackgroundCalls, plain_error
from .base import SessionPage

if TYPE_CHECKING:
    from pneumodesk.client.confirmed_cases import RecalibrationOffer
    from pneumodesk.node.model_registry import LocalModel
    from pneumodesk.training.monitoring import LocalPerformance

MODEL_COLUMNS = ("#", "State", "Version", "Architecture", "From", "Round", "Global version", "Added", "Decided by")
FIGURE_COLUMNS = ("Figure", "This model", "Model in use when it arrived", "Difference")
STATE_WORDS = {"active": "in use", "candidate": "waiting for a decision", "retired": "earlier", "rejected": "rejected"}

#: Figures shown first, with their names in words; any other numeric figure follows under its own name.
FIGURES = (
    ("roc_auc", "ROC AUC"),
    ("roc_auc_ci95", "ROC AUC, 95 % interval"),
    ("sensitivity", "Sensitivity"),
    ("specificity", "Specificity"),
    ("threshold", "Decision threshold"),
    ("expected_calibration_error", "Calibration error (lower is better)"),
    ("images", "Validation images"),
    ("normal", "of which normal"),
    ("pneumonia", "of which pneumonia"),
)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any) -> str:
    if isinstance(value, list | tuple) and value and all(_is_number(v) for v in value):
        return "–".join(_text(v) for v in value)
    if not _is_number(value):
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def figure_rows(metrics: dict[str, Any], baseline: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(figure, this model, the model in use when it arrived, difference) for each figure either has; counts and
    intervals get no difference."""
    names = dict(FIGURES)
    keys = [k for k, _ in FIGURES if k in metrics or k in baseline]
    keys += sorted(k for k in {*metrics, *baseline} - set(names)
                   if _is_number(metrics.get(k)) or _is_number(baseline.get(k)))
    rows = []
    for key in keys:
        mine, theirs = metrics.get(key), baseline.get(key)
        if _text(mine) == "—" and _text(theirs) == "—":
            continue
        difference = f"{mine - theirs:+.3f}" if isinstance(mine, float) and isinstance(theirs, float) else ""
        rows.append((names.get(key, key.replace("_", " ")), _text(mine), _text(theirs), difference))
    return rows


class ModelsPage(SessionPage):
    active_model_changed = Signal()
    drift_warning = Signal(str)  # the prediction model does worse on this month's confirmed cases than its card
    recalibration_finished = Signal(bool)  # whether a candidate was added

    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.models: list[LocalModel] = []
        self.calls = BackgroundCalls("model-registry", self)
        self.monitor_calls = BackgroundCalls("local-monitoring", self)
        self.performance: LocalPerformance | None = None

        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 20, 24, 12)
        outer.addWidget(QLabel("<h2>Models</h2>"))
        intro = QLabel("New global models from the federation are checked on this hospital's own validation images "
                       "and wait here. Accept one to make it the prediction model; earlier models can be restored.")
        intro.setWordWrap(True)
        outer.addWidget(intro)
        self.table = read_only_table("Local models", MODEL_COLUMNS)
        self.table.itemSelectionChanged.connect(self._show_selected)
        outer.addWidget(self.table, 2)
        row = QHBoxLayout()
        self.accept_button = QPushButton("Accept")
        self.accept_button.setAccessibleName("Accept the selected model as the prediction model")
        self.accept_button.clicked.connect(self.accept_selected)
        self.reject_button = QPushButton("Reject")
        self.reject_button.clicked.connect(self.reject_selected)
        self.restore_button = QPushButton("Restore")
        self.restore_button.setAccessibleName("Restore the selected earlier model")
        self.restore_button.clicked.connect(self.restore_selected)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        for button in (self.accept_button, self.reject_button, self.restore_button, self.refresh_button):
            row.addWidget(button)
        self.recalibrate_button = QPushButton("Recalibrate on confirmed cases")
        self.recalibrate_button.setAccessibleName("Refit the prediction model's operating points on the confirmed "
                                                  "cases and offer the result as a candidate")
        self.recalibrate_button.clicked.connect(self.recalibrate)
        row.addWidget(self.recalibrate_button)
        row.addStretch(1)
        outer.addLayout(row)
        self.monitoring = QLabel("")
        self.monitoring.setWordWrap(True)
        self.monitoring.setAccessibleName("The prediction model on this month's confirmed cases")
        outer.addWidget(self.monitoring)
        self.figures_title = QLabel("<b>Figures on this hospital's validation images</b>")
        outer.addWidget(self.figures_title)
        self.figures = QTableWidget(0, len(FIGURE_COLUMNS))
        self.figures.setAccessibleName("Selected model's figures beside the current model's")
        self.figures.setHorizontalHeaderLabels(FIGURE_COLUMNS)
        self.figures.verticalHeader().hide()
        self.figures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.figures.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        figures_row = QHBoxLayout()
        figures_row.addWidget(self.figures, 2)
        self.curves = ModelCurvesPanel()  # the same validation predictions, as pictures
        figures_row.addWidget(self.curves, 5)
        outer.addLayout(figures_row, 5)
        self.message = message_label("Models message")
        outer.addWidget(self.message)
        self._show_selected()

    # --- session (set_session and showEvent: SessionPage) ---
    def refresh(self) -> None:
        """Read the registry in the background (its first use registers the bundled default model: a copy)."""
        if self.session is None:
            return
        self._stale = False
        models = self.node.models
        if not self.calls.start(lambda _report: models.list(), self._fill, self._on_failed):
            self._stale = True

    def check_local_performance(self) -> bool:
        """Measure the prediction model on this month's confirmed cases in the background (skipped while a
        measurement runs)."""
        from pneumodesk.client.confirmed_cases import monitor_confirmed

        node = self.node
        return self.monitor_calls.start(lambda report: monitor_confirmed(node), self._show_performance,
                                        lambda message: show_message(self.monitoring, message, error=True))

    def _show_performance(self, performance: LocalPerformance) -> None:
        self.performance = performance
        warning = performance.warning()
        if warning is not None:
            show_message(self.monitoring, warning, error=True)
            self.drift_warning.emit(warning)
            return
        refused = f" ({performance.refused} confirmed image(s) changed, moved or unreadable, left out)" \
            if performance.refused else ""
        show_message(self.monitoring, f"Model {performance.model_version} on this month's confirmed cases: "
                     f"{performance.sensitivity.sentence()}; {performance.specificity.sentence()}{refused}.")

    def _on_failed(self, message: str) -> None:
        self.message.setText(message)

    def _fill(self, models: list[LocalModel]) -> None:
        """Show the registry, then measure the (possibly new) prediction model on the confirmed cases — after the
        registry's first use has registered the default model, never beside it."""
        self.check_local_performance()
        selected = self.selected()
        self.models = list(models)
        self.table.setRowCount(len(self.models))
        for r, model in enumerate(self.models):
            added = model.added.astimezone().strftime("%Y-%m-%d %H:%M")
            values = (str(model.id), STATE_WORDS.get(model.status, model.status), model.model_version,
                      model.architecture, model.source, "" if model.round_number is None else str(model.round_number),
                      "" if model.global_version is None else str(model.global_version), added,
                      model.decided_by or "")
            for c, text in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(text))
        if selected is not None:
            self.select(selected.id)
        elif self.models:
            self.select(self.models[0].id)
        self._show_selected()

    # --- selection ---
    def select(self, model_id: int) -> None:
        ids = [m.id for m in self.models]
        if model_id in ids:
            self.table.selectRow(ids.index(model_id))

    def selected(self) -> LocalModel | None:
        rows = self.table.selectionModel().selectedRows()
        return self.models[rows[0].row()] if rows and rows[0].row() < len(self.models) else None

    def active(self) -> LocalModel | None:
        return next((m for m in self.models if m.status == ModelStatus.ACTIVE), None)

    def _show_selected(self) -> None:
        model = self.selected()
        may_decide = self.session is not None and self.session.can(Permission.APPROVE_TRAINING)
        self.accept_button.setEnabled(may_decide and model is not None and model.status == "candidate")
        self.reject_button.setEnabled(may_decide and model is not None and model.status == "candidate")
        self.restore_button.setEnabled(may_decide and model is not None and model.status == "retired")
        self.recalibrate_button.setEnabled(may_decide and not self.calls.busy)
        if model is None:
            self.figures.setRowCount(0)
            self.curves.show_figures([])
            return
        # Only figures on the same images are compared: a model's own and those of the model in use when it
        # arrived (both on this hospital's validation split). The bundled model has its model card's figures only.
        recalibration = model.source == RECALIBRATION_SOURCE
        if model.baseline_metrics and recalibration:
            self.figures_title.setText("<b>Figures on this hospital's confirmed cases</b> (all of them): after this "
                                       "recalibration, beside the thresholds in use when it was made (before)")
        elif model.baseline_metrics:
            self.figures_title.setText("<b>Figures on this hospital's validation images</b>, beside the model that "
                                       "was in use when this one arrived")
        else:
            self.figures_title.setText(f"<b>Figures recorded for model {model.id}</b> ({model.source}; nothing to "
                                       "compare them with on the same images)")
        labelled = [(f"Model {model.id}" + (" (after)" if recalibration else ""), model.metrics)]
        if model.baseline_metrics:
            labelled.insert(0, ("Before recalibration" if recalibration else "Model in use when it arrived",
                                model.baseline_metrics))
        self.curves.show_figures(labelled)
        rows = figure_rows(model.metrics, model.baseline_metrics or {})
        self.figures.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.figures.setItem(r, c, item)

    # --- decisions ---
    def _decide(self, action: str) -> bool:
        model = self.selected()
        if model is None or self.session is None:
            self.message.setText("Select a model first.")
            return False
        method = {"accept": self.node.models.accept, "reject": self.node.models.reject,
                  "restore": self.node.models.restore}[action]
        try:
            changed = method(self.session, model.id)
        except Exception as error:
            self.message.setText(plain_error(error))
            return False
        done = {"accept": f"Model {changed.model_version} is now the prediction model.",
                "reject": f"Model {changed.model_version} was rejected; it will not be used.",
                "restore": f"Model {changed.model_version} is the prediction model again."}[action]
        self.message.setText(done)
        self.calls.shutdown()
        self._fill(self.node.models.list())
        if action != "reject":
            self.active_model_changed.emit()
        return True

    def accept_selected(self) -> bool:
        return self._decide("accept")

    def reject_selected(self) -> bool:
        return self._decide("reject")

    def restore_selected(self) -> bool:
        return self._decide("restore")

    def recalibrate(self) -> bool:
        """Refit on the latest confirmed cases dataset in the background; the new candidate is selected when done."""
        from pneumodesk.client.confirmed_cases import recalibrate_on_confirmed

        if self.session is None:
            return False
        node, session = self.node, self.session
        started = self.calls.start(lambda _report: recalibrate_on_confirmed(node, session),
                                   self._on_recalibrated, self._on_recalibration_failed)
        if started:
            self.message.setText("Refitting the operating points on the confirmed cases …")
        return started

    def _on_recalibrated(self, offer: RecalibrationOffer) -> None:
        refused = len(offer.refused) + offer.recalibration.unreadable
        left_out = f"; {refused} confirmed image(s) left out (changed, moved or unreadable)" if refused else ""
        self.message.setText(f"Recalibrated on {offer.recalibration.after['images']} confirmed case(s){left_out}. "
                             f"Model {offer.candidate.id} waits for a decision: its figures are beside the current "
                             "thresholds' on the same images.")
        self._fill(self.node.models.list())
        self.select(offer.candidate.id)
        self.recalibration_finished.emit(True)

    def _on_recalibration_failed(self, message: str) -> None:
        self.message.setText(f"Not recalibrated: {message}")
        self.recalibration_finished.emit(False)

    def shutdown(self) -> None:
        self.calls.shutdown()
        self.monitor_calls.shutdown()


__all__ = ["ModelsPage", "figure_rows"]
