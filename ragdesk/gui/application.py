"""The QApplication as RagDesk sets it up (names, icon, quit behaviour), for `ragdesk gui`, its
self-test and the scripts that render the window."""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

from PySide6.QtWidgets import QApplication

from ragdesk.gui import icons

# Desktops whose native file dialog Qt's gtk3 theme plugin gives (Qt's own list of GTK desktops).
GTK_DESKTOPS = {"GNOME", "X-CINNAMON", "PANTHEON", "UNITY", "MATE", "XFCE", "LXDE", "BUDGIE"}


def prefer_desktop_dialogs(environ: MutableMapping[str, str] | None = None,
                           gtk3_plugin: bool | None = None) -> str | None:
    """Before the QApplication exists: on a Linux desktop whose file dialog Qt can reach only
    through the XDG desktop portal, choose Qt's portal theme, which keeps the desktop's theme for
    everything but the dialogs and falls back to Qt's own dialog without a portal. That is every
    desktop but a GTK one with Qt's gtk3 theme plugin at hand (PySide6 carries it; the bundle
    leaves it out, ragdesk.spec) -- KDE Plasma, LXQt, ...: PySide6 carries no plugin of theirs.
    Returns the theme chosen, if any. A theme the user set (QT_QPA_PLATFORMTHEME) is left alone;
    see gui/filedialog.py."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux") or env.get("QT_QPA_PLATFORMTHEME"):
        return None
    desktops = {d.strip().upper() for d in env.get("XDG_CURRENT_DESKTOP", "").split(":") if d.strip()}
    if not desktops or not env.get("DBUS_SESSION_BUS_ADDRESS"):
        return None  # no desktop (Qt's own dialog is the only one), or no session bus
    if desktops & GTK_DESKTOPS and (gtk3_plugin if gtk3_plugin is not None else _has_gtk3_plugin()):
        return None  # Qt's gtk3 theme gives the GTK dialog
    env["QT_QPA_PLATFORMTHEME"] = "xdgdesktopportal"
    return "xdgdesktopportal"


def _has_gtk3_plugin() -> bool:
    from PySide6.QtCore import QLibraryInfo

    themes = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platformthemes"
    return any(themes.glob("libqgtk3*"))


def configure(app: QApplication) -> None:
    app.setApplicationName("RagDesk")
    app.setOrganizationName("RagDesk")
    app.setDesktopFileName("ragdesk")
    app.setWindowIcon(icons.icon("app"))
    app.setQuitOnLastWindowClosed(False)  # the lock hides the window before the dialog shows


def application(argv: list[str]) -> QApplication:
    """The process's QApplication (made now if there is none yet), configured for RagDesk."""
    app = QApplication.instance()
    if app is None:
        prefer_desktop_dialogs()
        app = QApplication(argv)
    assert isinstance(app, QApplication)
    configure(app)
    return app
