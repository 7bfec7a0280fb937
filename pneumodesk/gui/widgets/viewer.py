"""``ImageCanvas``: one X-ray with fit/zoom/pan, window/level by dragging, invert, rotate/flip and a heat-map overlay.

Display state never changes the pixels it was given; ``reset_view()`` returns to fit, full window, no transform.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 0.1, 32.0


def heat_colours() -> np.ndarray:
    """256×4 uint8 RGBA look-up table: blue (low influence, transparent) → red (high influence, opaque)."""
    x = np.linspace(0.0, 1.0, 256)
    rgb = np.stack([np.clip(1.5 - np.abs(4 * x - c), 0, 1) for c in (3, 2, 1)], axis=1)
    alpha = np.clip(x * 1.6, 0, 1)
    return np.round(np.concatenate([rgb, alpha[:, None]], axis=1) * 255).astype(np.uint8)


HEAT_LUT = heat_colours()


def grey_image(pixels: np.ndarray, level: float, width: float, inverted: bool) -> tuple[QImage, np.ndarray]:
    """An 8-bit QImage of ``pixels`` (float in [0, 1]) through the window; returns the buffer that backs it."""
    low = level - width / 2
    shown = np.clip((pixels - low) * (255.0 / max(width, 1e-3)), 0, 255).astype(np.uint8)
    if inverted:
        shown = 255 - shown
    shown = np.ascontiguousarray(shown)
    height, w = shown.shape
    return QImage(shown.data, w, height, w, QImage.Format.Format_Grayscale8), shown


def heat_image(heatmap: np.ndarray) -> tuple[QImage, np.ndarray]:
    """A straight-alpha RGBA QImage of a heat map in [0, 1]; returns the buffer that backs it."""
    rgba = np.ascontiguousarray(HEAT_LUT[np.clip(heatmap * 255, 0, 255).astype(np.uint8)])
    height, width = heatmap.shape
    return QImage(rgba.data, width, height, width * 4, QImage.Format.Format_RGBA8888), rgba


class ImageCanvas(QWidget):
    """Left-drag pans, right-drag (or Shift+left-drag) sets window (horizontal) and level (vertical), wheel zooms."""

    view_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("X-ray image viewer")
        self.setAccessibleDescription("Drag to pan, right-drag to change window and level, wheel to zoom")
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.setMinimumSize(320, 320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._pixels: np.ndarray | None = None
        self._heatmap: np.ndarray | None = None
        self._grey: QImage | None = None
        self._heat: QImage | None = None
        self._buffers: list[np.ndarray] = []
        self._message = "Open X-ray files or a folder to start (Ctrl+O, Ctrl+Shift+O), or drop them here."
        self._drag_start: QPointF | None = None
        self._drag_mode = ""
        self.overlay_visible = False
        self.overlay_opacity = 0.45
        self.reset_view(update=False)

    # --- content ---
    @property
    def has_image(self) -> bool:
        return self._pixels is not None

    def set_image(self, pixels: np.ndarray, heatmap: np.ndarray | None = None) -> None:
        self._pixels = pixels
        self._heatmap = heatmap
        self.reset_view(update=False)
        self._render()

    def set_heatmap(self, heatmap: np.ndarray | None) -> None:
        self._heatmap = heatmap
        self._render()

    def show_message(self, message: str) -> None:
        """Clear the image and show ``message`` (e.g. why a file cannot be shown)."""
        self._pixels = self._heatmap = None
        self._grey = self._heat = None
        self._message = message
        self.update()

    # --- view state ---
    def reset_view(self, update: bool = True) -> None:
        self.zoom = 1.0  # relative to fit
        self.pan = QPointF(0, 0)
        self.level, self.width_ = 0.5, 1.0
        self.inverted = False
        self.rotation = 0
        self.flip_h = self.flip_v = False
        if update:
            self._render()

    def fit(self) -> None:
        self.zoom, self.pan = 1.0, QPointF(0, 0)
        self._changed()

    def zoom_by(self, factor: float) -> None:
        self.zoom = min(max(self.zoom * factor, MIN_ZOOM), MAX_ZOOM)
        self._changed()

    def toggle_invert(self) -> None:
        self.inverted = not self.inverted
        self._render()

    def rotate(self, degrees: int = 90) -> None:
        self.rotation = (self.rotation + degrees) % 360
        self._changed()

    def flip_horizontal(self) -> None:
        self.flip_h = not self.flip_h
        self._changed()

    def flip_vertical(self) -> None:
        self.flip_v = not self.flip_v
        self._changed()

    def set_window(self, level: float, width: float) -> None:
        self.level = min(max(level, -0.5), 1.5)
        self.width_ = min(max(width, 0.01), 2.0)
        self._render()

    def set_overlay(self, visible: bool) -> None:
        self.overlay_visible = visible
        self._changed()

    def set_overlay_opacity(self, opacity: float) -> None:
        self.overlay_opacity = min(max(opacity, 0.0), 1.0)
        self._changed()

    def _render(self) -> None:
        self._buffers = []
        self._grey = self._heat = None
        if self._pixels is not None:
            self._grey, buffer = grey_image(self._pixels, self.level, self.width_, self.inverted)
            self._buffers.append(buffer)
        if self._heatmap is not None:
            self._heat, buffer = heat_image(self._heatmap)
            self._buffers.append(buffer)
        self._changed()

    def _changed(self) -> None:
        self.update()
        self.view_changed.emit()

    # --- painting ---
    def scale(self) -> float:
        if self._grey is None:
            return 1.0
        w, h = self._grey.width(), self._grey.height()
        if self.rotation % 180:
            w, h = h, w
        return min(self.width() / w, self.height() / h) * self.zoom

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#000000"))
        if self._grey is None:
            painter.setPen(QColor("#9aa3ad"))
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.rect().adjusted(24, 24, -24, -24), flags, self._message)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        painter.translate(self.width() / 2 + self.pan.x(), self.height() / 2 + self.pan.y())
        scale = self.scale()
        painter.scale(scale, scale)
        painter.rotate(self.rotation)
        painter.scale(-1 if self.flip_h else 1, -1 if self.flip_v else 1)
        w, h = self._grey.width(), self._grey.height()
        target = QRectF(-w / 2, -h / 2, w, h)
        painter.drawImage(target, self._grey)
        if self.overlay_visible and self._heat is not None:
            painter.setOpacity(self.overlay_opacity)
            painter.drawImage(target, self._heat)

    # --- mouse ---
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag_start = event.position()
        window_drag = event.button() == Qt.MouseButton.RightButton or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        )
        self._drag_mode = "window" if window_drag else "pan"
        self.setCursor(Qt.CursorShape.SizeAllCursor if window_drag else Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_start is None:
            return
        delta = event.position() - self._drag_start
        self._drag_start = event.position()
        if self._drag_mode == "window":
            self.set_window(self.level - delta.y() / 400.0, self.width_ * float(np.exp(delta.x() / 300.0)))
        else:
            self.pan += delta
            self._changed()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag_start = None
        self.unsetCursor()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
