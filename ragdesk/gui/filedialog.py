"""Choosing files or a folder to add: the desktop's own file dialog, opened where the user last
chose, with a filter of the types RagDesk reads (and "All files").

Where the desktop has a native dialog Qt uses it: on GTK desktops (GNOME, Cinnamon, MATE, Xfce,
...) through its gtk3 theme plugin, which PySide6 carries. Other desktops (KDE Plasma, LXQt, ...)
offer theirs through the XDG desktop portal; Qt uses it when its platform theme is
"xdgdesktopportal", which gui/application.py's `prefer_desktop_dialogs` chooses before the
application starts (the desktop's own theme stays underneath for everything else, and without a
portal Qt falls back to its own dialog). With no desktop at all (a bare X server) Qt's own
dialog is the only one.

The last folder is kept in the vault's settings (encrypted), never in Qt's own settings file:
RagDesk keeps no document path outside the vault, and Qt's dialog's record of visited folders is
removed again after each use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import shiboken6
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

LAST_FOLDER = "last_folder"  # the vault setting: where the file dialog opens next time
COMMON_FIRST = ("pdf", "docx", "epub", "xlsx", "pptx", "html", "md", "txt", "eml", "xps", "mobi", "fb2")

def name_filters() -> list[str]:
    """The dialog's filters: the types RagDesk reads (either case), then every file."""
    from ragdesk.core.extract.formats import supported_extensions  # (PyMuPDF: after unlock)

    known = supported_extensions()
    first = [e for e in COMMON_FIRST if e in known]  # what a reader of the filter looks for
    extensions = first + [e for e in known if e not in first]
    patterns = " ".join([f"*.{e}" for e in extensions] + [f"*.{e.upper()}" for e in extensions])
    return [f"Documents RagDesk reads ({patterns})", "All files (*)"]


def remembered_folder(chosen: Sequence[str], folder: bool) -> str | None:
    """The folder to open next time: the chosen files' folder, or the chosen folder's parent
    (its siblings are the likely next choice)."""
    if not chosen:
        return None
    return os.path.dirname(os.path.abspath(chosen[0].rstrip(os.sep) if folder else chosen[0])) or None


def choose_paths(parent: QWidget, folder: bool, start: str | None = None) -> list[str]:
    """Ask for files (or, with `folder`, one folder), starting in `start` if it still exists;
    [] when the dialog is cancelled."""
    where = start if start and os.path.isdir(start) else os.path.expanduser("~")
    dialog = QFileDialog(parent, "Add a folder" if folder else "Add files", where)
    if folder:
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    else:
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
        filters = name_filters()
        dialog.setNameFilters(filters)
        dialog.selectNameFilter(filters[0])
    chosen = dialog.selectedFiles() if dialog.exec() else []
    shiboken6.delete(dialog)  # its destructor writes Qt's history: scrub it right after
    scrub_file_dialog_history()
    return chosen


def scrub_file_dialog_history() -> None:
    """QFileDialog records the folders it visited in Qt's own settings file; RagDesk keeps no
    document path outside the vault, so that record is removed again."""
    qt_settings = QSettings(QSettings.Scope.UserScope, "QtProject")
    qt_settings.beginGroup("FileDialog")
    for key in ("history", "lastVisited"):
        qt_settings.remove(key)
    qt_settings.endGroup()
    qt_settings.sync()
