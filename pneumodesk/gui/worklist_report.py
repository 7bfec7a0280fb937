"""The worklist report: a multi-page A4 PDF with every image of the worklist on one line — a thumbnail, its file
name, probability, decision and the reader's verdict — in the order shown.

Like the worklist CSV it names files by their name only (no folder). A thumbnail is read from the image file when
the report is written; a file that cannot be read any more gets an empty box and its line says so.

Invariants: reading the thumbnails and painting run off the GUI thread (``PredictPage.start_worklist_report``), so
they report progress per image and stop at the next image when cancelled; the PDF is painted into a temporary file
beside the target and renamed over it only when complete, so a cancelled or failed report leaves no file behind.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPdfWriter

from pneumodesk.errors import PneumoDeskError

from .export import a4_pdf
from .widgets.viewer import grey_image
from .widgets.worklist_model import WorklistItem

THUMBNAIL_PIXELS = 96  # stored size of a thumbnail's longer side
LINE_HEIGHT = 110  # device pixels at 150 dpi: about 18.6 mm


class ReportCancelled(PneumoDeskError):
    """The person cancelled the worklist report before it was complete; no file was written."""

    def __init__(self) -> None:
        super().__init__("The worklist report was cancelled; no file was written.")


def _stop_if(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise ReportCancelled


@dataclass(frozen=True)
class WorklistReportLine:
    name: str
    status: str
    probability: float | None
    decision: str  # "PNEUMONIA", "NORMAL", or why there is none
    verdict: str | None
    thumbnail: np.ndarray | None  # float32 in [0, 1], at most THUMBNAIL_PIXELS on its longer side


def thumbnail(path: Path) -> np.ndarray | None:
    """A small greyscale copy of the X-ray at ``path``, or None when it cannot be read."""
    from pneumodesk.imaging import XRayReadError, read_xray

    try:
        pixels = read_xray(path).pixels
    except (XRayReadError, OSError):
        return None
    step = max(1, int(np.ceil(max(pixels.shape) / THUMBNAIL_PIXELS)))
    return np.ascontiguousarray(pixels[::step, ::step], dtype=np.float32)


def report_lines(items: Sequence[WorklistItem],
                 read_thumbnail: Callable[[Path], np.ndarray | None] = thumbnail, *,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: threading.Event | None = None) -> list[WorklistReportLine]:
    """One line per item, its thumbnail read from its file; ``progress(done, total)`` after each image. Raises
    ``ReportCancelled`` before the next image once ``cancel`` is set."""
    lines = []
    for done, item in enumerate(items, start=1):
        _stop_if(cancel)
        p = item.prediction
        decision = p.label if p else (item.error or item.status.value)
        lines.append(WorklistReportLine(item.name, item.status.value, p.probability if p else None, decision,
                                        item.verdict, read_thumbnail(item.path)))
        if progress is not None:
            progress(done, len(items))
    return lines


def write_worklist_pdf(lines: Sequence[WorklistReportLine], path: Path, model: str, threshold: float | None,
                       now: datetime | None = None, cancel: threading.Event | None = None) -> Path:
    """Write the report (whole or not at all); raises ``OSError`` (plain message) when the file cannot be written,
    ``ReportCancelled`` when ``cancel`` is set before it is complete."""
    partial = path.with_name(f".{path.name}.part{os.getpid()}")
    try:
        writer, painter = a4_pdf(partial, "PneumoDesk worklist report")
    except OSError:
        raise OSError(f"The report could not be written to {path.name} (is the folder writable?).") from None
    complete = False
    try:
        try:
            _paint(painter, writer, lines, model, threshold, now or datetime.now(), cancel)
        finally:
            painter.end()
            del writer  # the file is closed before it is renamed
        _stop_if(cancel)
        os.replace(partial, path)
        complete = True
    finally:
        if not complete:
            partial.unlink(missing_ok=True)
    return path


def _font(size: float, bold: bool = False) -> QFont:
    font = QFont("DejaVu Sans")
    font.setPointSizeF(size)
    font.setBold(bold)
    return font


def _paint(painter: QPainter, writer: QPdfWriter, lines: Sequence[WorklistReportLine], model: str,
           threshold: float | None, now: datetime, cancel: threading.Event | None = None) -> None:
    width, height = writer.width(), writer.height()
    flagged = sum(line.decision == "PNEUMONIA" for line in lines)
    painter.setFont(_font(15, bold=True))
    painter.setPen(QColor("#111111"))
    painter.drawText(QRectF(0, 0, width, 60), Qt.AlignmentFlag.AlignLeft, "PneumoDesk — worklist report")
    painter.setFont(_font(8.5))
    painter.setPen(QColor("#555555"))
    at = f" at threshold {threshold * 100:.1f} %" if threshold is not None else ""
    painter.drawText(QRectF(0, 60, width, 60), Qt.TextFlag.TextWordWrap,
                     f"{len(lines)} image(s), {flagged} flagged as pneumonia{at} · model {model} · generated "
                     f"{now:%Y-%m-%d %H:%M} on this workstation (offline) · decision support only, not a diagnosis")
    y = 140.0
    columns = ((130, "File"), (width * 0.55, "Probability"), (width * 0.70, "Decision"), (width * 0.86, "Verdict"))
    ends = [x for x, _ in columns[1:]] + [float(width)]
    page = 1

    def header() -> None:
        painter.setFont(_font(8, bold=True))
        painter.setPen(QColor("#333333"))
        for x, title in columns:
            painter.drawText(QRectF(x, y, width - x, 30), Qt.AlignmentFlag.AlignLeft, title)

    header()
    y += 36
    for index, line in enumerate(lines, start=1):
        _stop_if(cancel)
        if y + LINE_HEIGHT > height - 40:
            painter.setFont(_font(7))
            painter.drawText(QRectF(0, height - 30, width, 30), Qt.AlignmentFlag.AlignRight, f"page {page}")
            writer.newPage()
            page += 1
            y = 0.0
            header()
            y += 36
        box = QRectF(0, y, 110, LINE_HEIGHT - 10)
        painter.setPen(QColor("#bbbbbb"))
        painter.drawRect(box)
        if line.thumbnail is not None:
            image, _buffer = grey_image(line.thumbnail, 0.5, 1.0, False)
            scaled = image.size().scaled(int(box.width()), int(box.height()), Qt.AspectRatioMode.KeepAspectRatio)
            painter.drawImage(QRectF(box.x(), box.y(), scaled.width(), scaled.height()), image)
        painter.setPen(QColor("#111111"))
        painter.setFont(_font(9))
        unreadable = "" if line.thumbnail is not None else "  (image no longer readable)"
        probability = "" if line.probability is None else f"{line.probability * 100:.1f} %"
        decision_colour = "#b3261e" if line.decision == "PNEUMONIA" else "#111111"
        cells = ((f"{index}. {line.name}{unreadable}", "#111111"), (probability, "#111111"),
                 (line.decision, decision_colour), (line.verdict or "", "#111111"))
        for (x, _), right, (text, colour) in zip(columns, ends, cells, strict=True):
            painter.setPen(QColor(colour))
            shown = painter.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, int(right - x - 10))
            painter.drawText(QRectF(x, y + 30, right - x - 10, 40), Qt.AlignmentFlag.AlignLeft, shown)
        y += LINE_HEIGHT
    painter.setPen(QColor("#555555"))
    painter.setFont(_font(7))
    painter.drawText(QRectF(0, height - 30, width, 30), Qt.AlignmentFlag.AlignRight, f"page {page}")


__all__ = ["ReportCancelled", "WorklistReportLine", "report_lines", "thumbnail", "write_worklist_pdf"]
