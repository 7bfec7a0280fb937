"""``pneumodesk predict``: files and folders in; a table, JSON or CSV out; optional heat-map overlays."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

from PIL import Image

from pneumodesk.csv_cells import defused_row
from pneumodesk.imaging import OutsideIntendedUseError, XRayReadError, read_xray
from pneumodesk.inference import FileResult, Predictor, expand_paths, predict_files
from pneumodesk.inference.batch import UNEXPECTED_READ_ERROR, failed_result
from pneumodesk.inference.heatmap_overlay import overlay_heatmap
from pneumodesk.model import ModelError

from .library_log import route_library_output_to_log

log = logging.getLogger(__name__)

CSV_COLUMNS = ("path", "probability", "label", "error")


def predict_command(args: argparse.Namespace) -> int:
    """One row per file found, whatever each file holds; library warnings go to the app home's log, not here."""
    route_library_output_to_log(getattr(args, "home", None))
    try:
        predictor = Predictor.from_path(args.model, args.operating_point)
    except ModelError as error:
        print(f"pneumodesk predict: {error}", file=sys.stderr)
        return 2
    paths = expand_paths(args.paths)
    if not paths:
        print("pneumodesk predict: no X-ray files were found in the given folders.", file=sys.stderr)
        return 1
    if args.heatmap_dir:
        results = [_predict_with_heatmap(predictor, path, args.heatmap_dir) for path in paths]
    else:
        results = list(predict_files(predictor, paths))

    if args.csv:
        _write_csv(args.csv, results)
    if args.json:
        print(json.dumps([_as_dict(result) for result in results], indent=2))
    else:
        _print_table(results, predictor)
    # 1 only when no file could be read at all; a file refused as outside the intended use was read and answered.
    return 0 if any(result.prediction or result.outside_intended_use for result in results) else 1


def _predict_with_heatmap(predictor: Predictor, path: Path, folder: Path) -> FileResult:
    try:
        xray = read_xray(path)
    except XRayReadError as error:
        return failed_result(path, error)
    except Exception:
        log.exception("Unexpected error reading an image file")
        return FileResult(path, None, UNEXPECTED_READ_ERROR)
    try:
        prediction, heatmap = predictor.predict_with_heatmap(xray)
    except OutsideIntendedUseError as error:  # read, and judged unlike a chest radiograph: no probability, no map
        return failed_result(path, error)
    folder.mkdir(parents=True, exist_ok=True)
    overlay = overlay_heatmap(xray.pixels, heatmap, image_weight=0.6)
    target = folder / f"{path.stem}_heatmap.png"
    counter = 1
    while target.exists():  # never overwrite: two inputs may share a stem
        counter += 1
        target = folder / f"{path.stem}_heatmap_{counter}.png"
    Image.fromarray(overlay).save(target)
    return FileResult(path, prediction, None)


def _as_dict(result: FileResult) -> dict[str, object]:
    prediction = result.prediction
    return {
        "path": str(result.path),
        "probability": None if prediction is None else round(prediction.probability, 6),
        "label": None if prediction is None else prediction.label,
        "operating_point": None if prediction is None else prediction.operating_point,
        "threshold": None if prediction is None else round(prediction.threshold, 6),
        "model_version": None if prediction is None else prediction.model_version,
        "error": result.error,
    }


def _write_csv(target: Path, results: list[FileResult]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for result in results:
            prediction = result.prediction
            writer.writerow(
                defused_row([
                    str(result.path),
                    "" if prediction is None else f"{prediction.probability:.6f}",
                    "" if prediction is None else prediction.label,
                    result.error or "",
                ])
            )


def _print_table(results: list[FileResult], predictor: Predictor) -> None:
    width = min(max((len(str(r.path)) for r in results), default=4), 70)
    point = predictor.operating_point
    print(
        f"model {predictor.model_version} · operating point {predictor.operating_point_name} "
        f"(threshold {point.threshold:.3f}) · on this workstation only"
    )
    print(f"{'file':<{width}}  probability  decision")
    for result in results:
        name = str(result.path)
        name = name if len(name) <= width else "…" + name[-(width - 1) :]
        if result.prediction:
            print(f"{name:<{width}}  {result.prediction.probability:>11.3f}  {result.prediction.label}")
        else:
            print(f"{name:<{width}}  {'—':>11}  error: {result.error}")
    done = sum(1 for r in results if r.prediction)
    flagged = sum(1 for r in results if r.prediction and r.prediction.is_pneumonia)
    print(
        f"{done} of {len(results)} predicted, {flagged} flagged as pneumonia, {len(results) - done} could not be read"
    )
