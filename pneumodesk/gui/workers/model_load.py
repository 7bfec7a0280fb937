"""The worker that imports the inference stack and loads a model bundle, off the GUI thread."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from pneumodesk.errors import PneumoDeskError

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)


class ModelLoadWorker(QObject):
    """Imports the inference stack and loads a bundle (seconds), so the window can show before the model is ready."""

    loaded = Signal(object, object)  # (batch predictor, viewer predictor)
    failed = Signal(str)

    def __init__(self, bundle: Path | None, operating_point: str | None,
                 locate: Callable[[], Path] | None = None) -> None:
        """``bundle`` wins; else ``locate()`` (the node's active model, found in this thread: its first call may
        register and copy the bundled default); else, or if that fails, the bundled default model."""
        super().__init__()
        self.bundle = bundle
        self.operating_point = operating_point
        self.locate = locate

    def _path(self) -> Path:
        from pneumodesk.model import default_bundle_path

        if self.bundle is not None:
            return self.bundle
        if self.locate is not None:
            try:
                return self.locate()
            except Exception:  # a damaged registry must not stop predictions with the bundled model
                return default_bundle_path()
        return default_bundle_path()

    @Slot()
    def run(self) -> None:
        from pneumodesk.inference import Predictor
        from pneumodesk.model import ModelError, load_bundle

        try:
            bundle = load_bundle(self._path())
            try:
                batch = Predictor(bundle, self.operating_point)
            except ModelError:  # a saved operating point this model does not have: use the model's default
                batch = Predictor(bundle, None)
            viewer = Predictor(bundle, batch.operating_point_name)
        except PneumoDeskError as error:
            self.failed.emit(str(error))
            return
        except Exception as error:  # a bug: logged, and still reaches the window as words
            log.exception("loading the model bundle failed")
            self.failed.emit(f"The model could not be loaded ({type(error).__name__}: {error}).")
            return
        self.loaded.emit(batch, viewer)
        # The charts' library takes about half a second to import: import it here, off the GUI thread, so the first
        # chart drawn (the worklist histogram, as results arrive) does not stall the window. It creates no QObject.
        import pyqtgraph  # noqa: F401


__all__ = ["ModelLoadWorker"]
