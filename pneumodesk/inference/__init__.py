"""On-device prediction: calibrated probability, decision at an operating point, heat maps, batches."""

from .batch import FileResult, expand_paths, predict_files
from .prediction import NORMAL, PNEUMONIA, Prediction
from .predictor import Predictor

__all__ = ["NORMAL", "PNEUMONIA", "FileResult", "Prediction", "Predictor", "expand_paths", "predict_files"]
