"""The Federation page's per-round pictures: each global model's ROC AUC on this hospital's validation images, and
the bytes this node sent per round (figures from ``pneumodesk.node.round_history``)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QWidget

from pneumodesk.node import NodeService, UserSession
from pneumodesk.node.round_history import RoundHistory, round_history

from ..charts import BarChart, LineChart, LineSeries
from ..workers.background import plain_error


class RoundChartsPanel(QWidget):
    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.session: UserSession | None = None
        self.history = RoundHistory((), (), ())
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.auc = LineChart("Global model's ROC AUC on this hospital's validation images", "round", "ROC AUC",
                             whole_x=True, y_range=(0.5, 1.0))
        self.sent = BarChart("Bytes sent per round", "round (coordinator's id)", "sent", y_units="B")
        layout.addWidget(self.auc, 1)
        layout.addWidget(self.sent, 1)

    def set_session(self, session: UserSession | None) -> None:
        self.session = session

    def refresh(self) -> None:
        """Re-read the registry and the egress log (reading the log needs the session's permission)."""
        if self.session is None:
            return
        try:
            records = self.node.egress.read(self.session)
            self.show_history(round_history(self.node.models.list(), records))
        except Exception as error:
            self.auc.title_label.setText(plain_error(error))

    def show_history(self, history: RoundHistory) -> None:
        self.history = history
        self.auc.set_series([LineSeries(f"plan {p.plan_sha256[:12]}", tuple(float(r) for r in p.rounds), p.auc)
                             for p in history.auc_by_plan])
        self.sent.set_bars([str(r) for r in history.byte_rounds], history.bytes_sent)


__all__ = ["RoundChartsPanel"]
