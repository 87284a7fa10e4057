"""The window as a keyboard and screen-reader user meets it: standard shortcuts, accessible
names and tooltips on every control, pane sizes remembered."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from tests.conftest import PASSPHRASE


def _keys(action) -> set[str]:  # type: ignore[no-untyped-def]
    return {s.toString(QKeySequence.SequenceFormat.PortableText) for s in action.shortcuts()}


def test_shortcuts(qtbot, unlocked) -> None:
    app = unlocked()
    w = app.window
    assert QKeySequence(QKeySequence.StandardKey.Open).toString() in _keys(w.act_add_files)
    assert {"Ctrl+Return", "Ctrl+Enter"} <= _keys(w.act_send)
    assert _keys(w.act_stop) == {"Esc"} and "Ctrl+L" in _keys(w.act_lock)
    assert QKeySequence(QKeySequence.StandardKey.Find).toString() in _keys(w.act_find)
    assert "Ctrl+Shift+O" in _keys(w.act_add_folder)
    # Our own shortcuts are listed in the menus, with the keys in the tooltip.
    menu_actions = {a for m in w.menuBar().actions() for a in m.menu().actions()}
    assert {w.act_send, w.act_stop, w.act_lock, w.act_add_files, w.act_find} <= menu_actions
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow)
    qtbot.keyClick(w.chat.question, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert w.library.search.hasFocus()


def test_every_control_has_an_accessible_name_and_a_tooltip(qtbot, unlocked) -> None:
    app = unlocked()
    w = app.window
    w.open_settings()
    missing = []
    for root in (w, w.settings_dialog):
        kinds = (QAbstractButton, QAbstractItemView, QLineEdit, QPlainTextEdit, QComboBox, QSpinBox)
        for widget in root.findChildren(QWidget):
            if not isinstance(widget, kinds) or widget.window() is not root:
                continue
            # Parts Qt builds inside its own widgets (a combo box's editor, a spin box's line
            # edit, a line edit's clear button, a header) are named through their owner.
            if widget.objectName().startswith("qt_") or isinstance(widget, QHeaderView) \
                    or isinstance(widget.parent(), (QLineEdit, QComboBox, QSpinBox)) \
                    or (type(widget.parent()).__name__ == "QFrame" and isinstance(widget, QAbstractItemView)):
                continue
            name = widget.accessibleName() or (isinstance(widget, QAbstractButton) and widget.text())
            if not name:
                missing.append(f"{type(widget).__name__} without an accessible name")
            needs_tip = isinstance(widget, (QAbstractButton, QLineEdit, QComboBox, QSpinBox))
            if needs_tip and not widget.toolTip() \
                    and not (isinstance(widget, QAbstractButton) and widget.text() in ("Save", "Cancel")):
                missing.append(f"{type(widget).__name__} {name!r} without a tooltip")
    assert not missing, missing


def test_pane_sizes_are_remembered(qtbot, make_app, existing_vault, ui_settings) -> None:
    app = make_app()
    app.start()
    app.dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(app.unlocked, timeout=10000):
        app.dialog.unlock_button.click()
    app.window.resize(780, 640)  # within the offscreen screen (800 x 800), which geometry is clamped to
    app.window.splitter.setSizes([230, 300, 240])
    sizes = app.window.splitter.sizes()
    with qtbot.waitSignal(app.locked, timeout=10000):
        app.lock()
    app.shutdown()

    again = make_app()
    again.start()
    again.dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(again.unlocked, timeout=10000):
        again.dialog.unlock_button.click()
    assert again.window.splitter.sizes() == sizes

