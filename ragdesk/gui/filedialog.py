"""Choosing files or a folder to add, without leaving their paths in Qt's own settings file."""

from __future__ import annotations

import os

import shiboken6
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget


def choose_paths(parent: QWidget, folder: bool) -> list[str]:
    """Ask for files (or, with `folder`, one folder); [] when the dialog is cancelled."""
    dialog = QFileDialog(parent, "Add a folder" if folder else "Add files", os.path.expanduser("~"))
    if folder:
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    else:
        dialog.setFileMode(QFileDialog.FileMode.ExistingFiles)
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
