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
    assert window.ollama_indicator.text.text() == "Ollama not reachable"
    assert window.chat.mode_label.isVisible() and "extractive" in window.chat.mode_label.text()
    # Said once: what is wrong in the banner (and two words in the status bar), what answers
    # look like above the question -- no sentence repeated in three places (issue 17).
    assert "extractive" not in banner.body.text() + banner.title.text()
    assert "not reachable" not in window.chat.mode_label.text()

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


def test_an_answer_that_finds_ollama_down_says_so_at_once_and_once(qtbot, indexed, fake_ollama) -> None:
    """Issue 17, item 5: the answers' outcome is the state's news too -- no wait for the next
    probe, one banner however many answers fall back, and the next model answer clears it."""
    app = indexed(poll_ollama=True)
    window = app.window
    app.services.store.set_setting("ollama_host", fake_ollama.host)
    with qtbot.waitSignal(window.ollama_checked, timeout=10000):
        window.check_ollama()
    indicator, banner = window.ollama_indicator, window.banner
    assert indicator.text.text() == "Ollama 0.12.6 · llama3.2:3b" and not banner.isVisible()
    shown_before = banner.shown_count

    # What the window shows at the very moment each answer is finished.
    seen: list[tuple[str, bool, str]] = []
    window.answer_finished.connect(
        lambda event: seen.append((event.mode, banner.isVisible(), indicator.text.text())))
    fake_ollama.fault("refused")
    for question in ("Where was the section about compiling with pyximport moved?",
                     "What is Cython?", "Which sample is on GitHub?"):
        with qtbot.waitSignal(window.answer_finished, timeout=20000):
            window.ask(question)
        qtbot.waitUntil(lambda: not window.answering, timeout=5000)
    assert [mode for mode, _, _ in seen] == ["extractive"] * 3
    assert all(visible and "not reachable" in text for _, visible, text in seen), seen
    assert banner.shown_count == shown_before + 1, "one banner, not one per answer"
    assert banner.title.text() == f"Ollama is not reachable at {fake_ollama.host}."
    assert window.ollama.reachable is False

    fake_ollama.clear("refused")
    seen.clear()
    with qtbot.waitSignal(window.answer_finished, timeout=20000):
        window.ask("What is Cython?")
    assert seen == [("llm", False, seen[0][2])] and "not reachable" not in seen[0][2]
    assert "llama3.2:3b" in seen[0][2]
    qtbot.waitUntil(lambda: indicator.text.text() == "Ollama 0.12.6 · llama3.2:3b", timeout=10000)
    assert not window.chat.mode_label.isVisible()
    assert banner.shown_count == shown_before + 1


def test_a_probe_saying_the_same_again_does_not_put_the_banner_up_again(
        qtbot, unlocked, existing_vault: Path, ollama_refused_host: str) -> None:
    _set_host(existing_vault, ollama_refused_host)
    app = unlocked(poll_ollama=True)
    window = app.window
    qtbot.waitUntil(lambda: window.banner.isVisible(), timeout=10000)
    for _ in range(3):
        with qtbot.waitSignal(window.ollama_checked, timeout=10000):
            window.banner.retry_button.click()
    assert window.banner.isVisible() and window.banner.shown_count == 1
