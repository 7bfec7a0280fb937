"""Dialogs: the model card, the keyboard shortcuts and the first-start intended-use notice."""

from __future__ import annotations

from html import escape
from itertools import groupby
from typing import TYPE_CHECKING, Any

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ..shortcuts import COMMANDS, Command

if TYPE_CHECKING:
    from pneumodesk.model import ModelCard

INTENDED_USE_NOTICE = (
    "<h3>Intended use</h3>"
    "<p>PneumoDesk is <b>decision support</b> for trained clinicians reading frontal chest radiographs. It estimates "
    "the probability that an image shows pneumonia, to help prioritise a worklist.</p>"
    "<p>It is <b>not a diagnosis</b>: every finding must be confirmed by a qualified reader. It is not cleared as a "
    "medical device. The heat map shows what influenced the score; it is not a localisation of disease.</p>"
    "<p>Everything runs offline: <b>images stay on this workstation</b>.</p>"
    "<p>Read the model card (Help ▸ Model card, F2) for what the model was trained on and its limitations.</p>"
)


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple):
        return "–".join(_figure(v) for v in value)
    return escape(str(value))


def model_card_html(card: ModelCard) -> str:
    """The model card as HTML: intended use, limitations, operating points, validation figures, data citation."""
    parts = [
        f"<h2>{escape(card.name)}</h2>",
        f"<p>Version <b>{escape(card.version)}</b> · architecture {escape(card.architecture)} · input "
        f"{card.input_size}×{card.input_size} · created {escape(card.created)}</p>",
        f"<h3>Intended use</h3><p>{escape(card.intended_use)}</p>",
        "<h3>Limitations</h3><ul>" + "".join(f"<li>{escape(item)}</li>" for item in card.limitations) + "</ul>",
        "<h3>Operating points</h3><table cellpadding='4'><tr><th align='left'>name</th><th>threshold</th>"
        "<th>sensitivity</th><th>specificity</th><th align='left'>meaning</th></tr>",
    ]
    for name, point in card.operating_points.items():
        default = " (default)" if name == card.default_operating_point else ""
        parts.append(
            f"<tr><td>{escape(name)}{default}</td><td align='right'>{point.threshold:.3f}</td>"
            f"<td align='right'>{point.sensitivity:.3f}</td><td align='right'>{point.specificity:.3f}</td>"
            f"<td>{escape(point.description)}</td></tr>"
        )
    parts.append("</table><h3>Validation</h3><table cellpadding='3'>")
    for key, value in card.validation.items():
        if key == "curves":  # drawn beside the text (and listed under its charts' Values)
            continue
        parts.append(f"<tr><td>{escape(key.replace('_', ' '))}</td><td>{_figure(value)}</td></tr>")
    parts.append("</table><h3>Training data</h3>")
    training = dict(card.training)
    citations = training.pop("citation", None) or training.pop("citations", None)
    for key in ("data", "dataset", "images"):
        if key in training:
            parts.append(f"<p>{escape(key)}: {_figure(training[key])}</p>")
    if citations:
        items = citations if isinstance(citations, list) else [citations]
        parts.append("<p><b>Data citation</b></p><ul>" + "".join(f"<li>{escape(str(c))}</li>" for c in items) + "</ul>")
    parts.extend(_generalisation_html(card.extra.get("generalisation", {})))
    if card.weights_sha256:
        parts.append(f"<p style='color:gray'>weights sha256 {escape(card.weights_sha256)}</p>")
    return "".join(parts)


def _rate_html(rate: Any) -> str:
    """[value, CI low, CI high] as "0.950 (0.930–0.970)"."""
    value, low, high = rate
    return f"{value:.3f} ({low:.3f}–{high:.3f})"


def _generalisation_html(recorded: dict[str, Any]) -> list[str]:
    """The yardstick's figures the card records (``training.card_evidence``): each shift-suite condition's ROC-AUC,
    sensitivity and specificity with 95 % CIs, and each cross-validation's summary."""
    if not recorded:
        return []
    parts = ["<h3>Beyond the validation split</h3>"]
    for name, entry in recorded.items():
        parts.append(f"<p><b>{escape(name)}</b> (measured {escape(str(entry.get('measured', '?')))})"
                     + (f": {escape(entry['note'])}" if entry.get("note") else "") + "</p>")
        if entry.get("kind") == "shift suite":
            images = entry["images"]
            parts.append(
                f"<p>{images['total']} validation images ({images['pneumonia']} pneumonia, {images['normal']} normal) "
                f"under each acquisition shift, at the {escape(entry['operating_point']['name'])} operating point; "
                "95 % bootstrap intervals.</p><table cellpadding='3'><tr><th align='left'>condition</th>"
                "<th>ROC-AUC</th><th>sensitivity</th><th>specificity</th></tr>"
            )
            for condition, row in entry["conditions"].items():
                parts.append(
                    f"<tr><td>{escape(condition)}</td><td>{row['roc_auc']:.3f} ({_figure(row['roc_auc_ci95'])})</td>"
                    f"<td>{_rate_html(row['sensitivity'])}</td><td>{_rate_html(row['specificity'])}</td></tr>"
                )
            worst = entry["worst_case"]
            parts.append("</table><p>Worst case: " + "; ".join(
                f"{escape(key.replace('_', '-'))} {worst[key]['value']:.3f} ({escape(worst[key]['shift'])})"
                for key in ("roc_auc", "sensitivity", "specificity") if key in worst) + ".</p>")
        elif entry.get("kind") == "cross-validation":
            summary, recipe = entry["summary"], entry["recipe"]
            worst = summary.get("worst_shift_roc_auc_median")
            parts.append(
                f"<p>{entry['folds']}-fold, patient-grouped, {entry['images']} images; recipe "
                f"{escape(str(recipe.get('architecture')))} at {recipe.get('input_size')} px, "
                f"{recipe.get('epochs')} epochs, shift-aware augmentation {recipe.get('shift_augment', 0)}: "
                f"ROC-AUC median {summary['roc_auc_median']:.4f} (folds {_figure(summary['roc_auc_range'])})"
                + (f", worst shift median {worst:.3f}" if worst is not None else "") + ".</p>"
            )
    return parts


class ModelCardDialog(QDialog):
    """The card as text; when the card records its validation curves, its ROC curve (operating points marked),
    reliability diagram and confusion matrix below it."""

    def __init__(self, card: ModelCard, parent: QWidget | None = None) -> None:
        from ..widgets.model_curves_panel import ModelCurvesPanel, curves_of

        super().__init__(parent)
        self.setWindowTitle(f"Model card — {card.name} {card.version}")
        self.setAccessibleName("Model card")
        self.resize(760, 640)
        layout = QVBoxLayout(self)
        self.text = QTextBrowser()
        self.text.setAccessibleName("Model card text")
        self.text.setHtml(model_card_html(card))
        self.curves: ModelCurvesPanel | None = None
        layout.addWidget(self.text, 1)
        if curves_of(card.validation) is not None:
            self.resize(980, 900)
            self.curves = ModelCurvesPanel()
            self.curves.show_figures([(f"Version {card.version}", card.validation)])
            layout.addWidget(self.curves, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class ShortcutsDialog(QDialog):
    """Lists every command in ``COMMANDS`` with its keys (the same table the actions are built from)."""

    def __init__(self, commands: tuple[Command, ...] = COMMANDS, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.setAccessibleName("Keyboard shortcuts")
        self.resize(560, 780)
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Group", "Command", "Keys"])
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for group, members in groupby(commands, key=lambda c: c.group):
            for command in members:
                row = self.table.rowCount()
                self.table.insertRow(row)
                keys = " or ".join(
                    QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in command.keys
                )
                for column, text in enumerate((group, command.text.rstrip("…"), keys)):
                    self.table.setItem(row, column, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table)
        hint = QLabel("In the viewer: drag to pan, right-drag (or Shift+drag) for window/level, wheel to zoom.")
        hint.setWordWrap(True)
        layout.addWidget(hint)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


class IntendedUseNotice(QDialog):
    """Shown on first start until the reader confirms it has been read."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("PneumoDesk — intended use")
        self.setAccessibleName("Intended use notice")
        self.setModal(True)
        layout = QVBoxLayout(self)
        text = QLabel(INTENDED_USE_NOTICE)
        text.setWordWrap(True)
        text.setMinimumWidth(480)
        layout.addWidget(text)
        buttons = QDialogButtonBox()
        button = buttons.addButton("I understand", QDialogButtonBox.ButtonRole.AcceptRole)
        button.setAccessibleName("I understand the intended use")
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)
