"""Datasets, local training and evaluation, metrics and calibration.

Names are loaded lazily (PEP 562), as in ``pneumodesk.node``: importing a light module such as
``pneumodesk.training.recipe`` (which the CLI parser reads its defaults from) does not pull in torch or numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pneumodesk.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .datasets import CLASS_NAMES, TrainingDataError, patient_group, scan_folder
    from .pipeline import prepare_data, train_bundle
    from .recipe import TrainingRecipe
    from .split import grouped_split
    from .trainer import predict_logits, train_model

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(("CLASS_NAMES", "TrainingDataError", "patient_group", "scan_folder"), "datasets"),
    **dict.fromkeys(("prepare_data", "train_bundle"), "pipeline"),
    "TrainingRecipe": "recipe",
    "grouped_split": "split",
    **dict.fromkeys(("predict_logits", "train_model"), "trainer"),
}

__all__ = [
    "CLASS_NAMES",
    "TrainingDataError",
    "TrainingRecipe",
    "grouped_split",
    "patient_group",
    "predict_logits",
    "prepare_data",
    "scan_folder",
    "train_bundle",
    "train_model",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
