"""Datasets, local training and evaluation, metrics and calibration."""

from .datasets import CLASS_NAMES, TrainingDataError, patient_group, scan_folder
from .pipeline import prepare_data, train_bundle
from .split import grouped_split
from .trainer import TrainingRecipe, predict_logits, train_model

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
