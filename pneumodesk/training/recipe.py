"""``TrainingRecipe``: the hyperparameters of a training run, in a module light enough for the CLI parser.

Invariant: this module imports nothing but the standard library, so ``pneumodesk train --help`` can show the
defaults without loading torch; the trainer and the parser both read them from here (one source of truth).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TrainingRecipe:
    """Everything that determines a training run besides the data (recorded in the model card)."""

    architecture: str = "pneumonet-m"
    input_size: int = 224
    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 20261127
    augment: bool = True
    # Shift-aware augmentation (``shifts.shift_standardised``): the probability that a training image is also
    # changed by one random acquisition shift (gamma, window, borders, JPEG, text, ...), 0 = off. Chosen with the
    # shift suite (benchmarks/recipe_experiment.py); ``shift_inversion`` adds raw MONOCHROME1 renderings to the draw.
    # Off by default: the DICOM reader already renders MONOCHROME1 correctly, and a model that also answers inverted
    # images needs an out-of-distribution threshold wide enough to let a CT slice saved as PNG through (measured on
    # a candidate trained with it: Mahalanobis distance 1010 against a threshold of 1095); inverted images are
    # refused instead.
    shift_augment: float = 0.5
    shift_inversion: bool = False
    # Exponential moving average of the weights (``torch.optim.swa_utils``), its decay per step; 0 = off (the last
    # step's weights are the model). When on, the averaged weights are validated each epoch and are what is saved.
    weight_averaging: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
