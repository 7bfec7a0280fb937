"""The worker that runs a participation engine to its end in its own thread (``engine.run`` blocks for the plan)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

if TYPE_CHECKING:
    from pneumodesk.client import ParticipationEngine


class ParticipationWorker(QObject):
    """Runs one engine to its end in its thread; ``status`` for each change, then ``finished`` with the result."""

    status = Signal(object)  # EngineStatus
    finished = Signal(object)  # EngineResult

    def __init__(self, engine: ParticipationEngine) -> None:
        super().__init__()
        self.engine = engine
        engine.on_status = self.status.emit

    @Slot()
    def run(self) -> None:
        self.finished.emit(self.engine.run())


__all__ = ["ParticipationWorker"]
