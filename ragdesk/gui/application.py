"""The QApplication as RagDesk sets it up (names, icon, quit behaviour), for `ragdesk gui`, its
self-test and the scripts that render the window."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from ragdesk.gui import icons


def configure(app: QApplication) -> None:
    app.setApplicationName("RagDesk")
    app.setOrganizationName("RagDesk")
    app.setDesktopFileName("ragdesk")
    app.setWindowIcon(icons.icon("app"))
    app.setQuitOnLastWindowClosed(False)  # the lock hides the window before the dialog shows


def application(argv: list[str]) -> QApplication:
    """The process's QApplication (made now if there is none yet), configured for RagDesk."""
    app = QApplication.instance() or QApplication(argv)
    assert isinstance(app, QApplication)
    configure(app)
    return app
