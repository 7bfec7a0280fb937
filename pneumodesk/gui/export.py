"""Exports a reader keeps: a PDF report of one image and a CSV of the worklist. Neither carries a file path.

Default file names carry only the kind of export and the local time (``pneumodesk-report-2026-11-27-1432.pdf``),
never anything from the image or its name.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter

from pneumodesk.csv_cells import defused_row

from .widgets.viewer import grey_image, heat_image
from .widgets.worklist_model import WorklistItem

if TYPE_CHECKING:
    from pneumodesk.inference import Prediction

CSV_COLUMNS = ("file", "status", "probability", "decision", "operating_point", "threshold", "model_version",
               "verdict", "error")


def default_export_name(kind: str, suffix: str, now: datetime | None = None) -> str:
    """``pneumodesk-{kind}-YYYY-MM-DD-HHMM.{suffix}`` in local time."""
    stamp = (now or datetime.now()).strftime("%Y-%m-%d-%H%M")
    return f"pneumodesk-{kind}-{stamp}.{suffix}"


def write_worklist_csv(items: list[WorklistItem], path: Path) -> Path:
    """One row per worklist item in the given order; the file name only (no folder), so no path leaves the table."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for item in items:
            p = item.prediction
            writer.writerow(defused_row([
                item.name,
                item.status.value,
                f"{p.probability:.4f}" if p else "",
                p.label if p else "",
                p.operating_point if p else "",
                f"{p.threshold:.4f}" if p else "",
                p.model_version if p else "",
                item.verdict or "",
                item.error or "",
            ]))
    return path


@dataclass(frozen=True)
class Report:
    """What one PDF report shows. ``position``/``total`` identify the image instead of its name or path."""

    position: int
    total: int
    pixels: np.ndarray  # X-ray, float32 in [0, 1]
    heatmap: np.ndarray | None
    prediction: Prediction | None  # None exactly when the model refused the image (``refusal`` says why)
    model_name: str
    verdict: str | None
    verdict_time: str | None
    heatmap_opacity: float = 0.45
    refusal: str | None = None  # "outside the model's intended use ...": shown instead of a probability
    model_version: str | None = None  # of a refusal (a prediction carries its own)


def _overlay(pixels: np.ndarray, heatmap: np.ndarray, opacity: float) -> QImage:
    grey, _buffer = grey_image(pixels, 0.5, 1.0, False)
    image = grey.convertToFormat(QImage.Format.Format_RGB32)
    heat, _heat_buffer = heat_image(heatmap)
    painter = QPainter(image)
    painter.setOpacity(opacity)
    painter.drawImage(0, 0, heat)
    painter.end()
    return image


def a4_pdf(path: Path, title: str) -> tuple[QPdfWriter, QPainter]:
    """An A4 portrait PDF at 150 dpi with 15 mm margins, and a painter begun on it (the caller ends it); raises
    ``OSError`` with a plain message when the file cannot be written."""
    writer = QPdfWriter(str(path))
    writer.setTitle(title)
    writer.setCreator("PneumoDesk")
    writer.setResolution(150)
    writer.setPageLayout(
        QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait, QMarginsF(15, 15, 15, 15),
                    QPageLayout.Unit.Millimeter)
    )
    painter = QPainter()
    if not painter.begin(writer):
        raise OSError(f"The report could not be written to {path.name} (is the folder writable?).")
    return writer, painter


def write_report_pdf(report: Report, path: Path, now: datetime | None = None) -> Path:
    """A one-page A4 report: the image, its heat map, probability, decision, model version and the verdict."""
    writer, painter = a4_pdf(path, "PneumoDesk report")
    try:
        _paint_report(painter, writer.width(), report, now or datetime.now())
    finally:
        painter.end()
    return path


def _paint_report(painter: QPainter, width: int, report: Report, now: datetime) -> None:
    p = report.prediction
    y = 0.0

    def text(line: str, size: float = 10, bold: bool = False, colour: str = "#111111", gap: float = 1.5) -> None:
        nonlocal y
        font = QFont("DejaVu Sans")
        font.setPointSizeF(size)
        font.setBold(bold)
        painter.setFont(font)
        painter.setPen(QColor(colour))
        rect = painter.boundingRect(QRectF(0, y, width, 2000), Qt.TextFlag.TextWordWrap, line)
        painter.drawText(QRectF(0, y, width, rect.height()), Qt.TextFlag.TextWordWrap, line)
        y += rect.height() * gap / 1.5 + size * 0.6

    text("PneumoDesk — chest X-ray report", 16, bold=True)
    text(f"Image {report.position} of {report.total} in this worklist · generated {now:%Y-%m-%d %H:%M} on this "
         "workstation (offline)", 9, colour="#555555")
    y += 10
    side = (width - 30) / 2
    grey, _buffer = grey_image(report.pixels, 0.5, 1.0, False)
    pictures = [("X-ray", grey)]
    if report.heatmap is not None:
        opacity = max(report.heatmap_opacity, 0.35)
        caption = "Heat map overlay (red: regions that most raised the score)"
        pictures.append((caption, _overlay(report.pixels, report.heatmap, opacity)))
    aspect = report.pixels.shape[0] / report.pixels.shape[1]
    box_h = min(side * aspect, 900)
    for i, (caption, image) in enumerate(pictures):
        x = i * (side + 30)
        target = QRectF(x, y, side, box_h)
        scaled = image.size().scaled(int(side), int(box_h), Qt.AspectRatioMode.KeepAspectRatio)
        painter.drawImage(QRectF(x, y, scaled.width(), scaled.height()), image)
        font = QFont("DejaVu Sans")
        font.setPointSizeF(8)
        painter.setFont(font)
        painter.setPen(QColor("#555555"))
        painter.drawText(QRectF(x, target.bottom() + 4, side, 30), Qt.AlignmentFlag.AlignLeft, caption)
    y += box_h + 50
    if p is None:
        text(report.refusal or "Outside the model's intended use: no probability.", 13, bold=True)
        text(f"Model: {report.model_name}, version {report.model_version or 'unknown'}", 10)
    else:
        text(f"Probability of pneumonia: {p.probability * 100:.1f} %", 13, bold=True)
        text(f"Decision: {p.label} at operating point {p.operating_point} (threshold {p.threshold * 100:.1f} %)", 11)
        text(f"Model: {report.model_name}, version {p.model_version}", 10)
    verdict = f"{report.verdict} with the model" if report.verdict else "not recorded"
    when = f" (recorded {report.verdict_time} UTC)" if report.verdict and report.verdict_time else ""
    text(f"Reviewer verdict: {verdict}{when}", 10)
    y += 10
    text("Decision support only, not a diagnosis: every finding must be confirmed by a qualified reader. The heat map "
         "shows which regions most influenced the score; it is not a localisation of disease.", 8, colour="#555555")
