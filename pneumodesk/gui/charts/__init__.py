"""Charts drawn with pyqtgraph: each takes plain figures computed outside Qt, follows the theme and can show the same
values as a table (its text alternative)."""

from .base import Chart, ChartValues
from .confusion import ConfusionMatrixView
from .histogram import HistogramChart
from .lines import BarChart, LineChart, LineSeries
from .model_curves import ReliabilityChart, RocChart

__all__ = [
    "BarChart",
    "Chart",
    "ChartValues",
    "ConfusionMatrixView",
    "HistogramChart",
    "LineChart",
    "LineSeries",
    "ReliabilityChart",
    "RocChart",
]
