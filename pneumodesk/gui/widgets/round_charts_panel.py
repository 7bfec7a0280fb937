"""The Federation page's per-round pictures: each global model's ROC AUC on this hospital's validation images, and
the bytes this node sent per round (figures from ``pneumodesk.node.round_history``), read in the background (the
registry's first use copies the bundled model in)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QWidget

from pneumodesk.node import NodeService, UserSession
from pneumodesk.node.round_history import RoundHistory, round_history

from ..charts import BarChart, LineChart, LineSeries
from ..workers.background import BackgroundCalls


class RoundChartsPanel(QWidget):
    def __init__(self, node: NodeService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node = node
        self.session: UserSession | None = None
        self.history = RoundHistory((), (), ())
        self.calls = BackgroundCalls("round-charts", self)
        self._again = False  # a refresh asked for while one was running
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
        """Re-read the registry and the egress log in the background (the log needs the session's permission)."""
        if self.session is None:
            return
        node, session = self.node, self.session

        def read(_report: object) -> RoundHistory:
            return round_history(node.models.list(), node.egress.read(session))

        self._again = not self.calls.start(read, self._done, self._failed)

    def _done(self, history: RoundHistory) -> None:
        self.show_history(history)
        if self._again:
            self.refresh()

    def _failed(self, message: str) -> None:
        self.auc.title_label.setText(f"The per-round figures could not be read: {message}")

    def show_history(self, history: RoundHistory) -> None:
        self.history = history
        self.auc.set_series([LineSeries(f"plan {p.plan_sha256[:12]}", tuple(float(r) for r in p.rounds), p.auc)
                             for p in history.auc_by_plan])
        self.sent.set_bars([str(r) for r in history.byte_rounds], history.bytes_sent)

    def shutdown(self) -> None:
        self.calls.shutdown()


__all__ = ["RoundChartsPanel"]
