"""On-device prediction: calibrated probability, decision at an operating point, heat maps, batches.

Names are loaded lazily (PEP 562), so importing a small pure module such as ``pneumodesk.inference.histogram`` (the
GUI's worklist does, at start) does not pull in torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pneumodesk.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .batch import FileResult, expand_paths, predict_files
    from .prediction import NORMAL, PNEUMONIA, Prediction
    from .predictor import Predictor

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("FileResult", "expand_paths", "predict_files"), "batch"),
    **dict.fromkeys(("NORMAL", "PNEUMONIA", "Prediction"), "prediction"),
    "Predictor": "predictor",
}

__all__ = ["NORMAL", "PNEUMONIA", "FileResult", "Prediction", "Predictor", "expand_paths", "predict_files"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
