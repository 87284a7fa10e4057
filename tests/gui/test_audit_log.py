"""File › Audit log…: the log shown read-only with its verification state; a tampered entry is
named in the window; the anchor is copied as SEQ:HASH (issue 20, part 1)."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QAbstractItemView

from ragdesk.core.store.sqlite import keyfile
from ragdesk.core.store.sqlite.keyfile import Sidecar
from tests.conftest import PASSPHRASE

pytestmark = pytest.mark.timeout(60)


def test_the_audit_log_is_shown_read_only_with_its_verification(qtbot, unlocked) -> None:  # type: ignore[no-untyped-def]
    app = unlocked()
    window = app.window
    store = window.services.store
    store.audit("token created", name="ana", address="10.0.0.7")
    window.act_audit.trigger()
    dialog = window.audit_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: dialog.view is not None, timeout=10000)  # verified on a worker
    assert dialog.view.verdict.ok
    assert dialog.state.text().startswith("✓ Verified: audit log intact:")
    table = dialog.table
    assert table.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    rows = [[table.item(r, c).text() for c in range(4)] for r in range(table.rowCount())]
    assert rows[0][2] == "token created" and "10.0.0.7" in rows[0][3]  # newest first
    assert [r[2] for r in rows][-1] == "vault created" and rows[-1][0] == "1"
    dialog.copy_anchor.click()
    head = store.audit_head()
    assert QGuiApplication.clipboard().text() == str(head)

    # the entry's address rewritten with the passphrase, straight on the file
    key, _params = keyfile.matching_key(store.path, PASSPHRASE, Sidecar.read(store.home))
    conn = keyfile.connect(store.path, key, read_only=False)
    try:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("UPDATE audit_log SET detail = replace(detail, '10.0.0.7', '10.9.9.9')")
    finally:
        conn.close()
    with qtbot.waitSignal(dialog.loaded, timeout=10000) as again:
        dialog.refresh.click()
    assert again.args == [False]
    text = dialog.state.text()
    assert text.startswith("✗ The audit log does not verify:")
    assert f"entry {head.seq} ('token created'" in text and "was changed" in text
    assert not dialog.copy_anchor.isEnabled()

    # locking closes it with the vault
    with qtbot.waitSignal(app.locked, timeout=20000):
        window.lock_requested.emit(None)
    assert window.audit_dialog is None



def test_the_retention_is_set_in_the_settings_dialog(qtbot, unlocked) -> None:  # type: ignore[no-untyped-def]
    from ragdesk.core.store.chain import RETENTION_SETTING

    app = unlocked()
    window = app.window
    store = window.services.store
    window.act_settings.trigger()
    dialog = window.settings_dialog
    assert dialog.audit_retention.value() == 0 and dialog.audit_retention.text() == "Forever"
    dialog.audit_retention.setValue(90)
    with qtbot.waitSignal(window.settings_ctl.saved, timeout=10000):
        dialog._save()
    assert store.get_setting(RETENTION_SETTING) == 90
    window.act_settings.trigger()
    dialog = window.settings_dialog
    assert dialog.audit_retention.value() == 90
    dialog.audit_retention.setValue(0)
    with qtbot.waitSignal(window.settings_ctl.saved, timeout=10000):
        dialog._save()
    assert store.get_setting(RETENTION_SETTING) is None
