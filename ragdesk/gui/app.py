"""Starts the Qt application. A placeholder main window until the desktop-app issue lands."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

from ragdesk import __version__


class PlaceholderWindow(QMainWindow):
    def __init__(self, home: Path) -> None:
        super().__init__()
        self.setWindowTitle(f"RagDesk {__version__}")
        label = QLabel(
            f"<h2>RagDesk {__version__}</h2><p>Vault folder: {html.escape(str(home))}</p>"
            "<p>The desktop interface is being built. Use the <code>ragdesk</code> command line"
            " meanwhile (<code>ragdesk --help</code>).</p>"
        )
        label.setMargin(24)
        label.setAccessibleName("Welcome")
        self.setCentralWidget(label)
        self.resize(640, 360)


def run(home: Path, argv: list[str]) -> int:
    app = QApplication.instance() or QApplication(argv)
    window = PlaceholderWindow(home)
    window.show()
    return app.exec()
