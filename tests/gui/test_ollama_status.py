"""Ollama in the status bar; the banner when it cannot be reached (answers turn extractive);
the settings dialog lists Ollama's models and keeps its choices in the vault."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox

from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import PASSPHRASE


def _set_host(home: Path, host: str) -> None:
    with vault_store.unlock(home, PASSPHRASE) as v:
        v.set_setting("ollama_host", host)


def test_banner_when_ollama_is_down_and_answers_are_extractive(qtbot, indexed, home: Path,
                                                               ollama_refused_host: str) -> None:
    app = indexed(poll_ollama=True)
    window = app.window
    app.services.store.set_setting("ollama_host", ollama_refused_host)
    with qtbot.waitSignal(window.ollama_checked, timeout=10000) as checked:
        window.banner.retry_button.click()
    assert not checked.args[0].reachable
    banner = window.banner
    assert banner.isVisible()
    assert banner.title.text() == f"Ollama is not reachable at {ollama_refused_host}."
    assert "ollama serve" in banner.body.text() and "Settings" in banner.body.text()
    assert "extractive" in banner.body.text()
    assert "not reachable" in window.ollama_indicator.text.text()
    assert window.chat.mode_label.isVisible() and "extractive" in window.chat.mode_label.text()

    window.chat.question.setPlainText("Where was the section about compiling with pyximport moved?")
    with qtbot.waitSignal(window.answer_finished, timeout=20000) as done:
        window.act_send.trigger()
    event = done.args[0]
    assert event.mode == "extractive" and event.citations
    text = window.chat.transcript.toPlainText()
    assert "extractive answer" in text and "not reachable" in text
    assert "cite:1/1" in window.chat.transcript.toHtml(), "extractive passages are cited too"


def test_status_bar_shows_version_and_model_and_settings_fix_the_host(
        qtbot, unlocked, existing_vault: Path, ollama_refused_host: str, fake_ollama) -> None:
    _set_host(existing_vault, ollama_refused_host)
    app = unlocked(poll_ollama=True)
    window = app.window
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10000)

    window.act_settings.trigger()
    dialog = window.settings_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.host.text() == ollama_refused_host
    dialog.host.setText(fake_ollama.host)
    dialog.check_button.click()
    qtbot.waitUntil(lambda: dialog.chat_model.count() > 1, timeout=10000)
    assert "✓ Ollama 0.12.6" in dialog.status.text()
    names = [dialog.chat_model.itemText(i) for i in range(dialog.chat_model.count())]
    assert "llama3.2:3b" in names and "nomic-embed-text" not in names
    assert dialog.embed_model.itemText(0).startswith("nomic-embed-text"), "embedding models are offered first"
    dialog.chat_model.setCurrentText("llama3.2:3b")
    dialog.autolock.setValue(7)
    dialog.chunk_tokens.setValue(192)
    with qtbot.waitSignal(window.ollama_checked, timeout=10000) as checked:
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Save).click()
    status = checked.args[0]
    assert status.reachable and status.model == "llama3.2:3b"
    assert not window.banner.isVisible()
    assert window.ollama_indicator.text.text() == "Ollama 0.12.6 · llama3.2:3b"
    store = app.services.store
    assert store.get_setting("ollama_host") == fake_ollama.host
    assert store.get_setting("chat_model") == "llama3.2:3b"
    assert store.get_setting("autolock_minutes") == 7 and store.get_setting("chunk_tokens") == 192
    assert app.idle.interval_ms == 7 * 60_000
