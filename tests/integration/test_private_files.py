"""Only the vault's owner may read its files (issue 19, item 9): the data folder is 0700 and the
vault, its WAL and shared memory, the key's sidecar, the lock, backups and the embedder's cache
0600; a vault made wider (by an older release, a copy, a umask) is tightened when it is opened,
and `ragdesk doctor` reports wide modes and `doctor --fix` mends them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ragdesk.core.embedding import builtin
from ragdesk.core.store.sqlite import backup
from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import PASSPHRASE, fast_kdf, run_cli

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Every entry under `folder` (and the folder, as '.') with its permission bits."""
    found = {".": mode(folder)}
    for path in folder.rglob("*"):
        found[str(path.relative_to(folder))] = mode(path)
    return found


def wide(folder: Path) -> dict[str, str]:
    return {name: oct(m) for name, m in modes(folder).items() if m & 0o077}


@pytest.fixture(autouse=True)
def ordinary_umask():  # type: ignore[no-untyped-def]
    """The common default, under which files were world-readable before."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_vault_is_private_while_in_use_and_after(home: Path) -> None:
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    v.set_setting("something", "to write")  # the WAL and shared memory exist now
    assert (home / "vault.db-wal").exists() and (home / "vault.db-shm").exists()
    assert mode(home) == 0o700
    assert wide(home) == {}, "nothing in the data folder may be readable by others"
    v.lock()
    assert wide(home) == {}


def test_an_existing_wide_vault_is_tightened_when_opened(locked_vault: Path) -> None:
    home = locked_vault
    os.chmod(home, 0o755)
    for path in home.iterdir():
        os.chmod(path, 0o644)
    assert wide(home)
    vault_store.unlock(home, PASSPHRASE).lock()
    assert wide(home) == {}
    assert mode(home) == 0o700 and mode(home / "vault.db") == 0o600 and mode(home / "vault.json") == 0o600


def test_a_read_only_open_changes_nothing(locked_vault: Path) -> None:
    os.chmod(locked_vault / "vault.json", 0o644)
    vault_store.unlock(locked_vault, PASSPHRASE, read_only=True).lock()
    assert mode(locked_vault / "vault.json") == 0o644


def test_cli_init_makes_a_private_vault(home: Path) -> None:
    r = run_cli("init", env={"RAGDESK_PASSPHRASE": PASSPHRASE})
    assert r.returncode == 0, r.stderr
    assert mode(home) == 0o700 and wide(home) == {}


def test_doctor_reports_wide_modes_and_fix_mends_them(locked_vault: Path) -> None:
    home = locked_vault
    os.chmod(home, 0o755)
    os.chmod(home / "vault.db", 0o644)
    os.chmod(home / "vault.json", 0o644)

    r = run_cli("doctor", "--json")
    report = json.loads(r.stdout)
    check = next(c for c in report["checks"] if c["name"] == "data.permissions")
    assert check["status"] == "fail" and r.returncode == 1
    assert "vault.db (644)" in check["summary"] and "doctor --fix" in check["remedy"]
    assert set(check["details"]["paths"]) == {str(home), str(home / "vault.db"), str(home / "vault.json")}
    assert wide(home), "the doctor alone changes nothing"

    r = run_cli("doctor", "--fix", "--json")
    assert f"made {home / 'vault.db'} private (0600)" in r.stderr
    check = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "data.permissions")
    assert check["status"] == "pass", check
    assert wide(home) == {} and mode(home) == 0o700


def test_backups_and_restores_are_private(locked_vault: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    result = backup.create_backup(locked_vault, PASSPHRASE, dest)
    assert mode(dest) == 0o700 and wide(dest) == {}, wide(dest)
    assert {p.name for p in result.path.iterdir()} >= {"vault.db", "vault.json", "manifest.json"}

    target = tmp_path / "restored"
    backup.restore(result.path, target, PASSPHRASE)
    assert wide(target) == {}


def test_the_embedder_cache_is_private(tmp_path: Path) -> None:
    cached = tmp_path / "cache" / "ragdesk" / "model.onnx"
    builtin._write_atomically(cached, b"graph")
    assert mode(cached.parent) == 0o700 and mode(cached) == 0o600


def test_doctor_warns_of_a_wide_embedder_cache(locked_vault: Path, tmp_path: Path) -> None:
    cache = tmp_path / "xdg-cache" / "ragdesk"
    cache.mkdir(parents=True)
    os.chmod(cache, 0o755)
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    check = next(c for c in json.loads(run_cli("doctor", "--json", env=env).stdout)["checks"]
                 if c["name"] == "data.permissions")
    assert check["status"] == "warn" and "embedder's cache" in check["summary"], check
    assert run_cli("doctor", "--fix", "--json", env=env).returncode in (0, 1)
    assert mode(cache) == 0o700
