"""`ragdesk gui --self-test` (and `ragdesk --self-test`), as the packaging checks run it."""

from __future__ import annotations

from tests.conftest import run_cli


def test_self_test_opens_the_window_and_exits_0() -> None:
    r = run_cli("gui", "--self-test", env={"QT_QPA_PLATFORM": "offscreen"}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "self-test OK" in r.stdout and "main window shown" in r.stdout
    assert "Qt:" not in r.stderr, r.stderr
