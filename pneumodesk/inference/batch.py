"""Predicting many files: decoding on two threads, the network on batches, one result per file in input order."""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pneumodesk.imaging import OutsideIntendedUseError, XRayReadError, is_supported_file, preprocess, read_xray

from .prediction import Prediction
from .predictor import Predictor

log = logging.getLogger(__name__)

UNEXPECTED_READ_ERROR = (
    "PneumoDesk could not read this file because of an unexpected problem in its image readers; the details are in "
    "the log."
)


@dataclass(frozen=True)
class FileResult:
    path: Path
    prediction: Prediction | None
    error: str | None  # a plain-language reason when the file could not be predicted
    outside_intended_use: bool = False  # the file was read, and says it is not a chest radiograph


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given, and folders searched recursively for supported images (sorted, hidden files skipped).

    A path that does not exist is kept, so that its error is reported in its own row.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and is_supported_file(p)
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                )
            )
        else:
            found.append(path)
    return found


def read_for_prediction(path: Path, input_size: int) -> np.ndarray | XRayReadError:
    """Model input for one file, or the plain reason it has none. Never raises for a bad file: the readers promise a
    typed ``XRayReadError``, and should one break that promise on some input, that one file fails (its traceback
    logged) while the rest of the batch goes on."""
    try:
        return preprocess(read_xray(path), input_size)
    except XRayReadError as error:
        return error
    except Exception:
        log.exception("Unexpected error reading an image file")
        return XRayReadError(UNEXPECTED_READ_ERROR)


def failed_result(path: Path, error: XRayReadError) -> FileResult:
    return FileResult(path, None, str(error), outside_intended_use=isinstance(error, OutsideIntendedUseError))


def predict_files(predictor: Predictor, paths: Iterable[Path], batch_size: int = 16
                  ) -> Generator[FileResult, None, None]:
    """Yield one ``FileResult`` per path, in order. A bad file yields its error; the rest go on. ``close()`` on the
    generator waits for at most one chunk of decoding already started."""
    size = predictor.card.input_size

    def load(path: Path) -> np.ndarray | XRayReadError:
        return read_for_prediction(path, size)

    paths = list(paths)
    chunks = [paths[start : start + batch_size] for start in range(0, len(paths), batch_size)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Decode the next chunk while the network runs on this one; at most two chunks are held in memory.
        pending = [pool.submit(load, path) for path in chunks[0]] if chunks else []
        for index, chunk in enumerate(chunks):
            loaded = [future.result() for future in pending]
            pending = [pool.submit(load, path) for path in chunks[index + 1]] if index + 1 < len(chunks) else []
            good = [item for item in loaded if not isinstance(item, XRayReadError)]
            answers = iter(predictor.assess_inputs(torch.from_numpy(np.stack(good)))) if good else iter(())
            for path, item in zip(chunk, loaded, strict=True):
                answer = item if isinstance(item, XRayReadError) else next(answers)
                if isinstance(answer, XRayReadError):  # unreadable, or read and outside the intended use
                    yield failed_result(path, answer)
                else:
                    yield FileResult(path, answer, None)
