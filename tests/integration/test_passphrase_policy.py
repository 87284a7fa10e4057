"""A weak passphrase is refused where one is chosen on the command line (issue 19, item 10):
`ragdesk init` and `passwd` exit 2 with the estimate's advice and change nothing, unless
--allow-weak-passphrase says so; the GUI's meter rates with the same estimate."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragdesk.core.passphrase import MIN_SCORE, estimate, weakness
from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import PASSPHRASE, run_cli

WEAK = ("a", "password123", "Password1!", "aaaaaaaaaaaaaaaa", "secret 7", "qwertyuiop")
STRONG = (PASSPHRASE, "lantern orchard violet gravel", "x" * 200)


@pytest.mark.parametrize("weak", WEAK)
def test_init_refuses_a_weak_passphrase(home: Path, weak: str) -> None:
    r = run_cli("init", env={"RAGDESK_PASSPHRASE": weak})
    assert r.returncode == 2, r.stderr
    assert "too easy to guess" in r.stderr and "--allow-weak-passphrase" in r.stderr
    assert "Traceback" not in r.stderr
    assert not vault_store.exists(home) and not (home / "vault.json").exists()


def test_the_message_carries_the_estimates_feedback(home: Path) -> None:
    r = run_cli("init", env={"RAGDESK_PASSPHRASE": "password123"})
    assert "This is a very common password." in r.stderr
    r = run_cli("init", env={"RAGDESK_PASSPHRASE": "abc"})
    assert "at least 8 characters" in r.stderr


def test_the_override_creates_it_anyway(home: Path) -> None:
    r = run_cli("init", "--allow-weak-passphrase", env={"RAGDESK_PASSPHRASE": "a"})
    assert r.returncode == 0, r.stderr
    vault_store.unlock(home, "a").lock()


def test_a_strong_passphrase_is_accepted(home: Path) -> None:
    r = run_cli("init", env={"RAGDESK_PASSPHRASE": "lantern orchard violet gravel"})
    assert r.returncode == 0, r.stderr


def test_passwd_refuses_a_weak_new_passphrase(locked_vault: Path) -> None:
    env = {"RAGDESK_PASSPHRASE": PASSPHRASE, "RAGDESK_NEW_PASSPHRASE": "hunter2"}
    r = run_cli("passwd", env=env)
    assert r.returncode == 2 and "too easy to guess" in r.stderr
    vault_store.unlock(locked_vault, PASSPHRASE).lock()  # unchanged
    r = run_cli("passwd", "--allow-weak-passphrase", env=env)
    assert r.returncode == 0, r.stderr
    vault_store.unlock(locked_vault, "hunter2").lock()


def test_the_estimate() -> None:
    for weak in WEAK:
        assert weakness(weak), weak
        assert estimate(weak).score < MIN_SCORE
    for strong in STRONG:
        assert weakness(strong) is None, strong
    assert estimate("").score == 0


def test_the_gui_meter_uses_the_same_estimate() -> None:
    from ragdesk.gui.unlock import MIN_SCORE as GUI_MIN_SCORE
    from ragdesk.gui.unlock import passphrase_strength

    assert GUI_MIN_SCORE == MIN_SCORE
    for text in (*WEAK, *STRONG, "correct horse", "Tr0ub4dor&3"):
        meter, cli = passphrase_strength(text), estimate(text)
        assert (meter.score, meter.label) == (cli.score, cli.label), text
    assert "very common password" in passphrase_strength("password123").hint


def test_migrate_into_a_new_vault_refuses_a_weak_target_passphrase(locked_vault: Path,
                                                                   tmp_path: Path) -> None:
    target = tmp_path / "copy"
    env = {"RAGDESK_PASSPHRASE": PASSPHRASE, "RAGDESK_TARGET_PASSPHRASE": "letmein"}
    r = run_cli("migrate", "--from", str(locked_vault), "--to", str(target), env=env)
    assert r.returncode == 2 and "too easy to guess" in r.stderr, r.stderr
    assert not vault_store.exists(target)


def test_init_of_a_new_database_refuses_a_weak_passphrase(pg_url: str) -> None:
    """A team store's passphrase encrypts the originals kept in PostgreSQL: chosen by `init
    --database` and checked as a vault's is; a second `init` opens the store and asks for nothing
    new."""
    from ragdesk.core.store.open import store_exists

    env = {"RAGDESK_PASSPHRASE": "password123", "RAGDESK_PG_VECTOR_INDEX": "exact"}
    r = run_cli("--database", pg_url, "init", env=env)
    assert r.returncode == 2 and "too easy to guess" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not store_exists(pg_url), "nothing was created"
    r = run_cli("--database", pg_url, "init", "--allow-weak-passphrase", env=env)
    assert r.returncode == 0 and "Created the RagDesk schema" in r.stdout, r.stderr
    assert store_exists(pg_url)
    again = run_cli("--database", pg_url, "init", env=env)
    assert again.returncode == 0 and "already holds a RagDesk store" in again.stdout, again.stderr
    wrong = run_cli("--database", pg_url, "init", env={**env, "RAGDESK_PASSPHRASE": PASSPHRASE})
    assert wrong.returncode != 0 and "Traceback" not in wrong.stderr
    assert "passphrase" in wrong.stderr.lower()


def test_migrate_into_a_new_database_refuses_a_weak_target_passphrase(locked_vault: Path,
                                                                      pg_url: str) -> None:
    from ragdesk.core.store.open import store_exists

    env = {"RAGDESK_PASSPHRASE": PASSPHRASE, "RAGDESK_TARGET_PASSPHRASE": "letmein",
           "RAGDESK_PG_VECTOR_INDEX": "exact"}
    r = run_cli("migrate", "--from", str(locked_vault), "--to", pg_url, env=env)
    assert r.returncode == 2 and "too easy to guess" in r.stderr, r.stderr
    assert not store_exists(pg_url)


def test_init_of_an_unreachable_database_says_so() -> None:
    r = run_cli("--database", "postgresql://nobody@127.0.0.1:1/none", "init",
                env={"RAGDESK_PASSPHRASE": PASSPHRASE})
    assert r.returncode != 0 and "cannot connect to the database" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
