"""First start (create the vault), later starts (unlock), a wrong passphrase."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PySide6.QtCore import QPoint, Qt

from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.gui.unlock import CreateVaultDialog, UnlockDialog, passphrase_strength
from tests.conftest import PASSPHRASE

NEW_PASSPHRASE = "lantern orchard violet gravel"


def _digest(home: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(home.iterdir()) if p.name.startswith("vault") and p.is_file()}


def test_strength_estimate() -> None:
    assert passphrase_strength("password").score == 0
    assert passphrase_strength("Password1!").score <= 1
    assert passphrase_strength("aaaaaaaaaaaaaaaa").score <= 1
    assert passphrase_strength(NEW_PASSPHRASE).score == 4
    assert passphrase_strength("").label == "Empty"


def test_typing_the_passphrase_again_moves_nothing(qtbot, make_app, home: Path) -> None:
    """Seen at 1366x768: the "passphrases match" line appeared when the Repeat field was typed in
    and pushed the warning and the checkbox down, so a click aimed at the checkbox missed it."""
    app = make_app()
    app.start()
    dialog = app.dialog
    qtbot.waitUntil(dialog.isVisible)
    dialog.passphrase.setText(NEW_PASSPHRASE)

    def where() -> tuple[int, int]:
        dialog.layout().activate()
        return (dialog.understood.mapTo(dialog, QPoint(0, 0)).y(),
                dialog.create_button.mapTo(dialog, QPoint(0, 0)).y())

    before = where()
    dialog.repeat.setText(NEW_PASSPHRASE[:5])
    assert "do not match" in dialog.match_label.text()
    assert where() == before
    dialog.repeat.setText(NEW_PASSPHRASE)
    assert "match" in dialog.match_label.text() and where() == before


def test_first_start_creates_the_vault(qtbot, make_app, home: Path) -> None:
    app = make_app()
    app.start()
    dialog = app.dialog
    assert isinstance(dialog, CreateVaultDialog) and dialog.isVisible()
    assert "your data cannot be recovered" in dialog.forget_warning.title.text()
    assert not dialog.create_button.isEnabled()

    dialog.passphrase.setText("secret")
    assert dialog.strength_label.text().startswith(("Very weak", "Weak"))
    assert not dialog.create_button.isEnabled()
    dialog.passphrase.setText(NEW_PASSPHRASE)
    assert dialog.strength_label.text().startswith("Strong") and dialog.meter.value() == 4
    dialog.repeat.setText(NEW_PASSPHRASE + "x")
    assert "do not match" in dialog.match_label.text()
    dialog.repeat.setText(NEW_PASSPHRASE)
    assert "match" in dialog.match_label.text()
    assert not dialog.create_button.isEnabled(), "the unrecoverable-data warning must be acknowledged"
    dialog.understood.setChecked(True)
    assert dialog.create_button.isEnabled()

    with qtbot.waitSignal(app.unlocked, timeout=10000):
        dialog.create_button.click()
        assert dialog.busy and dialog.busy_row.isVisible() and not dialog.passphrase.isEnabled()
    assert vault_store.exists(home)
    qtbot.waitUntil(app.window.isVisible)
    assert not app.is_locked
    app.shutdown()
    vault_store.unlock(home, NEW_PASSPHRASE).lock()  # the passphrase typed is the one that opens it


def test_unlock_opens_the_main_window(qtbot, make_app, existing_vault: Path) -> None:
    app = make_app()
    app.start()
    dialog = app.dialog
    assert isinstance(dialog, UnlockDialog) and dialog.isVisible()
    assert not dialog.unlock_button.isEnabled()
    dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(app.unlocked, timeout=10000):
        dialog.unlock_button.click()
        assert dialog.busy and not dialog.unlock_button.isEnabled()
    qtbot.waitUntil(app.window.isVisible)
    assert app.dialog is None and not dialog.isVisible()
    assert dialog.passphrase.text() == "", "the passphrase does not linger in the widget"


def test_wrong_passphrase_is_reported_inline_and_changes_nothing(qtbot, make_app,
                                                                 existing_vault: Path) -> None:
    before = _digest(existing_vault)
    app = make_app()
    app.start()
    dialog = app.dialog
    dialog.passphrase.setText("not the passphrase")
    dialog.unlock_button.click()
    qtbot.waitUntil(lambda: dialog.error.isVisible() and not dialog.busy, timeout=10000)
    assert "Wrong passphrase" in dialog.error.text.text()
    assert dialog.isVisible() and dialog.passphrase.isEnabled() and app.is_locked
    assert app.window is None, "no main window without the right passphrase"
    assert _digest(existing_vault) == before, "a wrong passphrase leaves the vault's files untouched"

    assert dialog.focusWidget() is dialog.passphrase
    dialog.passphrase.setText(PASSPHRASE)
    with qtbot.waitSignal(app.unlocked, timeout=10000):
        qtbot.keyClick(dialog.passphrase, Qt.Key.Key_Return)  # Enter unlocks (it must not quit)
