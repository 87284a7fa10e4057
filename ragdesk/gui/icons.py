"""SVG icons from resources/icons, drawn in the palette's text colour so they suit light and dark.

Monochrome icons are written with ``currentColor``; they are rendered here in the current
palette's text colour (and its disabled colour), at each size and device pixel ratio the icon is
asked for, so they stay sharp on HiDPI screens. Status icons carry their own colours, and a
distinct shape as well: nothing is told by colour alone.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, QSize, Qt
from PySide6.QtGui import (
    QGuiApplication,
    QIcon,
    QIconEngine,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer

from ragdesk.paths import resource_dir

log = logging.getLogger("ragdesk.gui.icons")


def icons_dir() -> Path:
    return resource_dir("icons")


@cache
def _svg_source(name: str) -> bytes:
    path = icons_dir() / f"{name}.svg"
    try:
        return path.read_bytes()
    except OSError:
        log.error("icon %s is missing from %s", name, path.parent)
        return b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"/>'


class _PaletteSvgEngine(QIconEngine):
    """Renders one SVG in the palette's text colour at whatever size is asked for."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._cache: dict[tuple[int, int, int, float, str], QPixmap] = {}

    def _renderer(self, mode: QIcon.Mode) -> QSvgRenderer:
        palette = QGuiApplication.palette()
        group = QPalette.ColorGroup.Disabled if mode == QIcon.Mode.Disabled else QPalette.ColorGroup.Normal
        selected = mode == QIcon.Mode.Selected
        role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.WindowText
        colour = palette.color(group, role).name()
        data = _svg_source(self._name).replace(b"currentColor", colour.encode())
        return QSvgRenderer(QByteArray(data))

    def paint(self, painter: QPainter, rect, mode: QIcon.Mode, state: QIcon.State) -> None:  # type: ignore[no-untyped-def]
        renderer = self._renderer(mode)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(rect))
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        return self.scaledPixmap(size, mode, state, 1.0)

    def scaledPixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State, scale: float) -> QPixmap:
        scale = max(scale, 1.0)
        colour = QGuiApplication.palette().color(QPalette.ColorRole.WindowText).name()
        key = (int(mode.value), size.width(), size.height(), scale, colour)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        pixmap = QPixmap(QSize(round(size.width() * scale), round(size.height() * scale)))
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self._renderer(mode).render(painter, QRectF(0, 0, pixmap.width(), pixmap.height()))
        painter.end()
        pixmap.setDevicePixelRatio(scale)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = pixmap
        return pixmap

    def clone(self) -> QIconEngine:
        return _PaletteSvgEngine(self._name)

    def key(self) -> str:
        return "ragdesk-palette-svg"


_engines: dict[str, _PaletteSvgEngine] = {}


def icon(name: str) -> QIcon:
    """A themed icon by file name (without .svg). Coloured icons keep their own colours."""
    if b"currentColor" in _svg_source(name):
        engine = _engines.get(name)
        if engine is None:  # kept here too, so Python never collects an engine Qt still uses
            engine = _engines[name] = _PaletteSvgEngine(name)
        return QIcon(engine.clone())
    return QIcon(str(icons_dir() / f"{name}.svg"))


def pixmap(name: str, size: int, ratio: float = 1.0) -> QPixmap:
    """The icon as a pixmap of `size` logical pixels, sharp at device pixel ratio `ratio`."""
    return icon(name).pixmap(QSize(size, size), ratio)


def all_names() -> list[str]:
    return sorted(p.stem for p in icons_dir().glob("*.svg"))
