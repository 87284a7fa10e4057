"""File › Share on the network…: the vault served from the window, the certificate's SHA-256
fingerprint shown as the served certificate has it, client tokens made and revoked there, and
the server stopped when the vault locks (issue 19, item 8)."""

from __future__ import annotations

import re
import ssl

import httpx
import pytest

from ragdesk.cli.desktop import share_on_lan
from ragdesk.server.tls import client_context, fingerprint

pytestmark = pytest.mark.timeout(60)


def test_share_shows_the_served_certificates_fingerprint(qtbot, unlocked) -> None:  # type: ignore[no-untyped-def]
    app = unlocked(share=share_on_lan)
    window = app.window
    assert window.act_share.isVisible()
    window.act_share.trigger()
    dialog = window.sharing_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.fingerprint.text() == "" and dialog.status.text() == "Not shared."
    dialog.port.setValue(0)  # any free port
    with qtbot.waitSignal(dialog.sharing_changed, timeout=20000) as started:
        dialog.toggle.click()
    assert started.args == [True], dialog.status.text()
    url = dialog.address.text()
    assert url.startswith("https://127.0.0.1:") and dialog.toggle.text() == "Stop sharing"
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    served = ssl.get_server_certificate(("127.0.0.1", port))
    shown = dialog.fingerprint.text()
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", shown)
    assert shown == fingerprint(served), "the fingerprint shown is the served certificate's"
    assert "127.0.0.1" in dialog.names.text()

    # A token made in the dialog works at once; revoked there, it stops working.
    dialog.token_name.setText("ana")
    with qtbot.waitSignal(dialog.tokens_changed, timeout=10000):
        dialog.create_token.click()
    secret = dialog.secret.text()
    assert secret.startswith("rd_") and "shown only this once" in dialog.secret_note.text()
    assert any(dialog.token_list.item(i).text().startswith("ana") for i in range(dialog.token_list.count()))
    with httpx.Client(base_url=url, verify=client_context(served), timeout=10,
                      headers={"Authorization": f"Bearer {secret}"}) as c:
        assert c.get("/api/v1/me").json()["name"] == "ana"
        dialog.token_list.setCurrentRow(0)
        with qtbot.waitSignal(dialog.tokens_changed, timeout=10000):
            dialog.revoke_token.click()
        assert c.get("/api/v1/me").status_code == 401
    assert dialog.token_list.count() == 0

    # Locking stops the server before the vault closes.
    with qtbot.waitSignal(app.locked, timeout=20000):
        window.lock_requested.emit(None)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "health", verify=client_context(served), timeout=5)


def test_no_sharing_entry_without_a_server(qtbot, unlocked) -> None:  # type: ignore[no-untyped-def]
    app = unlocked()
    assert not app.window.act_share.isVisible()
