"""Files dragged onto the window: the local paths a drag carries, and the overlay shown while
they hover over it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QLabel, QWidget


def local_paths(event: QDropEvent) -> list[str]:
    """The local files and folders a drag (enter, move) or drop event carries."""
    mime = event.mimeData()
    if mime is None or not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()]


class DropOverlay(QLabel):
    """Shown over the window while files are dragged onto it."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__("Drop files or folders to add them to the library", parent)
        self.setObjectName("dropOverlay")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAccessibleName("Drop files here")
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.5)
        font.setBold(True)
        self.setFont(font)
        self.setStyleSheet(
            "#dropOverlay { background-color: rgba(40, 90, 150, 150); color: white;"
            " border: 3px dashed white; border-radius: 12px; }")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()

    def cover(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect().adjusted(12, 12, -12, -12))
        self.raise_()
        self.show()
