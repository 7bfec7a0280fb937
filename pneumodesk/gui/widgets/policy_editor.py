"""The node policy editor: the bounds every training plan must keep on this workstation (privacy budget cap, DP and
secure aggregation required, allowed architectures, hyperparameter bounds, minimum hospitals per round).

The editor only collects values; ``PolicyService.set`` checks them (and the permission) and audits the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from pneumodesk.node.policy import NodePolicy


def _double(name: str, low: float, high: float, decimals: int, step: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setAccessibleName(name)
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    return box


def _int(name: str, low: int, high: int) -> QSpinBox:
    box = QSpinBox()
    box.setAccessibleName(name)
    box.setRange(low, high)
    return box


class PolicyEditor(QGroupBox):
    """Shows a ``NodePolicy``; ``save_requested`` carries the edited values as a dict of its field names."""

    save_requested = Signal(dict)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Node policy: what any training plan must keep to", parent)
        self.epsilon_cap = _double("Privacy budget cap (ε) per dataset", 0.01, 1000.0, 2, 0.5)
        self.max_delta = _double("Largest δ", 1e-9, 0.01, 9, 1e-6)
        self.require_dp = QCheckBox("Require differential privacy")
        self.require_secagg = QCheckBox("Require secure aggregation")
        self.max_epochs = _int("Most local epochs per round", 1, 100)
        self.max_rounds = _int("Most rounds", 1, 10_000)
        self.max_learning_rate = _double("Largest learning rate", 0.0001, 10.0, 4, 0.01)
        self.min_batch = _int("Smallest batch size", 1, 4096)
        self.max_batch = _int("Largest batch size", 1, 4096)
        self.min_nodes = _int("Fewest hospitals per round", 1, 10_000)
        self.architectures = QListWidget()
        self.architectures.setAccessibleName("Allowed model architectures")
        self.architectures.setMaximumHeight(110)
        self.save_button = QPushButton("Save policy")
        self.save_button.clicked.connect(lambda: self.save_requested.emit(self.values()))

        form = QFormLayout()
        form.addRow("Privacy budget cap (ε) per dataset", self.epsilon_cap)
        form.addRow("Largest δ", self.max_delta)
        form.addRow("", self.require_dp)
        form.addRow("", self.require_secagg)
        form.addRow("Most local epochs per round", self.max_epochs)
        form.addRow("Most rounds", self.max_rounds)
        form.addRow("Largest learning rate", self.max_learning_rate)
        batch = QHBoxLayout()
        batch.addWidget(self.min_batch)
        batch.addWidget(QLabel("to"))
        batch.addWidget(self.max_batch)
        batch.addStretch(1)
        form.addRow("Batch size", batch)
        form.addRow("Fewest hospitals per round", self.min_nodes)
        form.addRow("Allowed architectures", self.architectures)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addStretch(1)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.save_button)
        layout.addLayout(row)

    def show_policy(self, policy: NodePolicy, known_architectures: Iterable[str] = ()) -> None:
        self.epsilon_cap.setValue(policy.epsilon_cap_per_dataset)
        self.max_delta.setValue(policy.max_delta)
        self.require_dp.setChecked(policy.require_dp)
        self.require_secagg.setChecked(policy.require_secure_aggregation)
        self.max_epochs.setValue(policy.max_local_epochs)
        self.max_rounds.setValue(policy.max_rounds)
        self.max_learning_rate.setValue(policy.max_learning_rate)
        self.min_batch.setValue(policy.min_batch_size)
        self.max_batch.setValue(policy.max_batch_size)
        self.min_nodes.setValue(policy.min_nodes_per_round)
        self.architectures.clear()
        for name in sorted(set(known_architectures) | set(policy.allowed_architectures)):
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            allowed = name in policy.allowed_architectures
            item.setCheckState(Qt.CheckState.Checked if allowed else Qt.CheckState.Unchecked)
            self.architectures.addItem(item)

    def set_architecture_allowed(self, name: str, allowed: bool) -> None:
        for index in range(self.architectures.count()):
            item = self.architectures.item(index)
            if item.text() == name:
                item.setCheckState(Qt.CheckState.Checked if allowed else Qt.CheckState.Unchecked)

    def values(self) -> dict[str, Any]:
        """The edited policy as ``NodePolicy`` field values."""
        allowed = [self.architectures.item(i).text() for i in range(self.architectures.count())
                   if self.architectures.item(i).checkState() == Qt.CheckState.Checked]
        return {
            "epsilon_cap_per_dataset": self.epsilon_cap.value(),
            "max_delta": self.max_delta.value(),
            "require_dp": self.require_dp.isChecked(),
            "require_secure_aggregation": self.require_secagg.isChecked(),
            "allowed_architectures": allowed,
            "max_local_epochs": self.max_epochs.value(),
            "max_rounds": self.max_rounds.value(),
            "max_learning_rate": self.max_learning_rate.value(),
            "min_batch_size": self.min_batch.value(),
            "max_batch_size": self.max_batch.value(),
            "min_nodes_per_round": self.min_nodes.value(),
        }

    def set_editable(self, editable: bool) -> None:
        for widget in self.findChildren(QWidget):
            if widget is not self:
                widget.setEnabled(editable)


__all__ = ["PolicyEditor"]
