"""Add files / Add folder (issue 17, item 7): the file dialog offers the types RagDesk reads and
"All files", opens where the user last chose, and that folder is kept in the vault's settings,
nowhere else on disk. Offscreen there is no desktop: Qt's own dialog stands in for the
desktop's (which Qt chooses the same way through the platform theme)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from ragdesk.gui.application import prefer_desktop_dialogs
from ragdesk.gui.filedialog import LAST_FOLDER, name_filters


def _when_dialog(monkeypatch: pytest.MonkeyPatch, act: Callable[[QFileDialog], None],
                 seen: list[QFileDialog]) -> None:
    """When RagDesk opens its file dialog (configured as for a user), look at it and act as the
    user would, instead of running its modal event loop: a modal loop in an offscreen test waits
    forever if anything goes wrong in the timer meant to end it (a fresh clone hung there)."""

    def run(dialog: QFileDialog) -> int:
        seen.append(dialog)
        act(dialog)
        return dialog.result()

    monkeypatch.setattr(QFileDialog, "exec", run)


def test_add_files_filters_the_types_read_and_remembers_the_folder(
        qtbot, unlocked, small_corpus: Path, tmp_path: Path, ui_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = unlocked()
    window = app.window
    store = app.services.store
    assert store.get_setting(LAST_FOLDER) is None
    looked: list[tuple[str, list[str], str]] = []

    def choose(dialog: QFileDialog) -> None:
        looked.append((dialog.directory().absolutePath(), dialog.nameFilters(), dialog.selectedNameFilter()))
        dialog.selectFile(str(small_corpus / "cython.pdf"))
        dialog.accept()

    seen: list[QFileDialog] = []
    _when_dialog(monkeypatch, choose, seen)
    with qtbot.waitSignal(window.index_finished, timeout=30000):
        window.act_add_files.trigger()
    (start, filters, selected), = looked
    assert start == str(Path.home())  # the first time: the home folder
    assert selected == filters[0] and filters[-1] == "All files (*)"
    for pattern in ("*.pdf", "*.PDF", "*.docx", "*.epub", "*.md", "*.txt", "*.html", "*.eml"):
        assert pattern in filters[0].split("(")[1].rstrip(")").split(), pattern
    assert "*.doc " not in filters[0] and "*.png" not in filters[0]  # read neither
    qtbot.waitUntil(lambda: not app.pool.busy, timeout=10000)
    assert store.get_setting(LAST_FOLDER) == str(small_corpus)

    # The next time it opens there; cancelled, nothing is indexed.
    looked.clear()
    _when_dialog(monkeypatch, lambda d: (looked.append((d.directory().absolutePath(), [], "")), d.reject()),
                 seen)
    window.act_add_files.trigger()
    assert looked and looked[0][0] == str(small_corpus)
    assert not window.indexing

    # The folder is in the vault only: not in Qt's settings, not in the window's layout file.
    for written in [*tmp_path.rglob("*.conf"), *tmp_path.rglob("*.ini")]:
        assert str(small_corpus) not in written.read_text(errors="replace"), written


def test_add_folder_remembers_the_folder_it_was_chosen_in(qtbot, unlocked, small_corpus: Path,
                                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    app = unlocked()
    window = app.window

    def choose(dialog: QFileDialog) -> None:
        dialog.setDirectory(str(small_corpus.parent))
        dialog.selectFile(str(small_corpus))
        dialog.accept()

    seen: list[QFileDialog] = []
    _when_dialog(monkeypatch, choose, seen)
    with qtbot.waitSignal(window.index_finished, timeout=30000) as finished:
        window.act_add_folder.trigger()
    assert finished.args[0].files_total == 4
    qtbot.waitUntil(lambda: not app.pool.busy, timeout=10000)
    assert app.services.store.get_setting(LAST_FOLDER) == str(small_corpus.parent)


def test_name_filters_without_a_window() -> None:
    supported, every = name_filters()
    assert supported.startswith("Documents RagDesk reads (*.") and every == "All files (*)"


def test_the_desktop_portal_gives_the_dialog_where_qt_has_no_plugin_for_the_desktop() -> None:
    bus = {"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}
    kde = {"XDG_CURRENT_DESKTOP": "KDE", **bus}
    assert prefer_desktop_dialogs(kde) == "xdgdesktopportal"
    assert kde["QT_QPA_PLATFORMTHEME"] == "xdgdesktopportal"
    gnome = {"XDG_CURRENT_DESKTOP": "ubuntu:GNOME", **bus}
    assert prefer_desktop_dialogs(dict(gnome), gtk3_plugin=True) is None  # Qt's gtk3 theme: GTK's
    assert prefer_desktop_dialogs(dict(gnome), gtk3_plugin=False) == "xdgdesktopportal"  # the bundle
    assert prefer_desktop_dialogs(dict(gnome)) is None  # PySide6 here carries the gtk3 plugin
    assert prefer_desktop_dialogs({**bus}) is None  # no desktop: Qt's own dialog
    assert prefer_desktop_dialogs({"XDG_CURRENT_DESKTOP": "KDE"}) is None  # no session bus
    chosen = {"XDG_CURRENT_DESKTOP": "KDE", "QT_QPA_PLATFORMTHEME": "kde", **bus}
    assert prefer_desktop_dialogs(chosen) is None and chosen["QT_QPA_PLATFORMTHEME"] == "kde"
