"""Locking, by idle time and by Ctrl+L: the database closes, document text leaves every widget,
the unlock dialog comes back; nothing about the documents is left in QSettings."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QAbstractListModel, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
)

from ragdesk.gui.preview import PreviewTarget
from ragdesk.gui.unlock import UnlockDialog
from tests.conftest import PASSPHRASE
from tests.gui.conftest import drop


def _visible_text(window, iter_widgets) -> str:  # type: ignore[no-untyped-def]
    """Everything the window's widgets hold as text: labels, editors, item views."""
    parts = []
    for w in iter_widgets(window):
        if isinstance(w, QLabel):
            parts.append(w.text())
        elif isinstance(w, (QTextEdit, QPlainTextEdit)):
            parts.append(w.toPlainText())
        elif isinstance(w, QLineEdit):
            parts.append(w.text())
        elif isinstance(w, QAbstractItemView) and w.model() is not None:
            model = w.model()
            columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount()
            for row in range(model.rowCount()):
                for col in range(columns):
                    parts.append(str(model.index(row, col).data() or ""))
                    parts.append(str(model.index(row, col).data(Qt.ItemDataRole.ToolTipRole) or ""))
    return "\n".join(parts)


def test_auto_lock_after_idle_time_clears_everything(qtbot, indexed, fake_ollama, iter_widgets,
                                                     ui_settings, small_corpus: Path) -> None:
    app = indexed()
    window = app.window
    store = app.services.store
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    window.chat.question.setPlainText("Where was the section about compiling with pyximport moved?")
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        window.act_send.trigger()
    citation = done.args[0].citations[0]
    qtbot.waitUntil(lambda: not window.answering and not app.pool.busy)
    window.open_preview(PreviewTarget.from_citation(citation))
    qtbot.waitUntil(lambda: window.preview.rendered is not None, timeout=10000)
    window.copy_answer()
    clipboard = QGuiApplication.clipboard()
    assert "Sources:" in clipboard.text()
    titles = [d.title for d in store.documents()]
    shown = _visible_text(window, iter_widgets) + _visible_text(window.preview, iter_widgets)
    assert "cython" in shown.lower() and "pyximport" in shown

    with qtbot.waitSignal(app.locked, timeout=10000):
        app.set_idle_ms(300)
    assert app.is_locked and store.is_locked, "the database is closed and the key wiped"
    assert not window.isVisible() and not window.preview.isVisible()
    after = _visible_text(window, iter_widgets) + _visible_text(window.preview, iter_widgets)
    for secret in ["pyximport", "Cython Reference", str(small_corpus), *titles]:
        assert secret not in after, f"{secret!r} is still in a widget after the lock"
    assert window.preview.page_view.label.pixmap().isNull()
    assert window.chat.transcript.entries == [] and window.sources.model.rowCount() == 0
    assert clipboard.text() == "", "an answer copied from the vault does not outlive the lock"

    dialog = app.dialog
    assert isinstance(dialog, UnlockDialog) and dialog.isVisible()
    assert "locked after" in dialog.note.text.text()

    # Window sizes are remembered; nothing about the documents is.
    ui_settings.sync()
    raw = Path(ui_settings.fileName()).read_bytes().decode("latin-1")
    for secret in ["pyximport", "cython", str(small_corpus), *titles]:
        assert secret not in raw

    dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(app.unlocked, timeout=10000):
        dialog.unlock_button.click()
    qtbot.waitUntil(
        lambda: window.library.documents.rowCount() == 4 and window.chat.conversations.rowCount() == 1,
        timeout=10000)


def test_ctrl_l_locks(qtbot, unlocked) -> None:
    app = unlocked()
    window = app.window
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    with qtbot.waitSignal(app.locked, timeout=10000):
        qtbot.keyClick(window.library.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    assert app.is_locked and isinstance(app.dialog, UnlockDialog)


def test_quitting_while_indexing_asks_first(qtbot, unlocked, small_corpus, monkeypatch) -> None:
    app = unlocked()
    window = app.window
    asked: list[str] = []
    answer = {"yes": False}

    def confirm(title: str, text: str) -> bool:
        asked.append(title + " " + text)
        return answer["yes"]

    monkeypatch.setattr(window, "confirm", confirm)
    drop(window.chat.transcript.viewport(), [small_corpus])
    assert window.index_ctl.indexing
    qtbot.keyClick(window.library.view, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert len(asked) == 1 and "indexing" in asked[0].lower()
    assert app.services is not None and window.isVisible()  # "Cancel": nothing happened

    answer["yes"] = True
    with qtbot.waitSignal(app.locked, timeout=20000):
        window.act_quit.trigger()
    assert len(asked) == 2 and app.services is None


def test_quitting_when_idle_does_not_ask(qtbot, unlocked, monkeypatch) -> None:
    app = unlocked()
    window = app.window
    monkeypatch.setattr(window, "confirm", lambda *a: pytest.fail("nothing to confirm when idle"))
    with qtbot.waitSignal(app.locked, timeout=10000):
        window.act_quit.trigger()
