"""Where a long-running process takes its passphrase from (issue 19, item 12): a file
(--passphrase-file) or the systemd credential `passphrase` ($CREDENTIALS_DIRECTORY, as
installer/systemd hands it over), so that it never sits in /proc/PID/environ; and
$RAGDESK_PASSPHRASE, when used, is taken out of os.environ once read (children do not inherit
it) and zeroed in the start-up block the kernel shows as /proc/PID/environ (docs/security.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import httpx
import pytest

from ragdesk.cli import common
from tests.conftest import PASSPHRASE, run_cli
from tests.fakes.ollama import FakeOllama
from tests.integration.test_server_cli import start_serve, stop


def _args(**values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"passphrase_file": None, **values})


def test_the_environment_variable_is_removed_once_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDESK_PASSPHRASE", PASSPHRASE)
    assert common.passphrase(_args()) == PASSPHRASE
    assert "RAGDESK_PASSPHRASE" not in os.environ
    monkeypatch.setenv("RAGDESK_NEW_PASSPHRASE", "lantern orchard violet gravel")
    assert common.new_passphrase(_args(), "new_passphrase_file", "RAGDESK_NEW_PASSPHRASE")
    assert "RAGDESK_NEW_PASSPHRASE" not in os.environ


def test_the_systemd_credential_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "passphrase").write_text(PASSPHRASE + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("RAGDESK_PASSPHRASE", "not this one")
    assert common.passphrase(_args()) == PASSPHRASE, "the credential comes before the environment"
    given = tmp_path / "given"
    given.write_text("from the option\n")
    assert common.passphrase(_args(passphrase_file=str(given))) == "from the option"


def test_a_command_opens_the_vault_with_the_credential(locked_vault: Path, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "passphrase").write_text(PASSPHRASE)
    r = run_cli("status", env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert r.returncode == 0, r.stderr
    r = run_cli("doctor", "--json", env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert '"vault.unlock"' in r.stdout and '"the passphrase opens the vault"' in r.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_serve_with_a_credential_keeps_the_passphrase_out_of_its_environment(
        locked_vault: Path, tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir(mode=0o700)
    (creds / "passphrase").write_text(PASSPHRASE + "\n")
    env = {k: v for k, v in os.environ.items() if k != "RAGDESK_PASSPHRASE"}
    with FakeOllama() as fake:
        proc, seen = start_serve("--insecure-http", "--new-token", "svc",
                                 env={**env, "OLLAMA_HOST": fake.host,
                                      "CREDENTIALS_DIRECTORY": str(creds)})
        try:
            r = httpx.get(seen["url"] + "api/v1/me", headers={"Authorization": f"Bearer {seen['token']}"})
            assert r.status_code == 200
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
            assert PASSPHRASE.encode() not in environ
        finally:
            code, err = stop(proc)
    assert code == 0, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_serve_scrubs_the_environment_variable_it_read(locked_vault: Path) -> None:
    """With RAGDESK_PASSPHRASE, the value is zeroed in the start-up block /proc/PID/environ
    shows (before the fix it stayed there for the server's whole life)."""
    with FakeOllama() as fake:
        proc, seen = start_serve("--insecure-http", "--new-token", "svc",
                                 env={"OLLAMA_HOST": fake.host, "RAGDESK_PASSPHRASE": PASSPHRASE})
        try:
            r = httpx.get(seen["url"] + "api/v1/me", headers={"Authorization": f"Bearer {seen['token']}"})
            assert r.status_code == 200
            environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
            assert PASSPHRASE.encode() not in environ
            assert b"OLLAMA_HOST=" in environ  # (the rest of the environment is as it was)
        finally:
            code, err = stop(proc)
    assert code == 0, err


def test_take_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGDESK_TEST_SECRET", "quiet marmot lighthouse")
    assert common.take_from_environment("RAGDESK_TEST_SECRET") == "quiet marmot lighthouse"
    assert "RAGDESK_TEST_SECRET" not in os.environ and os.getenv("RAGDESK_TEST_SECRET") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_serving_process_holds_no_hex_key_and_no_passphrase(tmp_path: Path) -> None:
    """A running `ragdesk serve`, its memory read through /proc/PID/mem after it answered: the
    key only in its one key buffer, never as hex (10 hex copies before issue 19, item 11), and
    the passphrase read from a file not kept (3 copies before). docs/security.md."""
    from ragdesk.core.store.keys import derive_key
    from ragdesk.core.store.sqlite import vault as vault_store
    from ragdesk.core.store.sqlite.keyfile import Sidecar
    from tests.conftest import fast_kdf
    from tests.memscan import hex_of, scan

    home = Path(os.environ["RAGDESK_HOME"])
    secret = bytearray(b"served residue " + os.urandom(12).hex().encode("ascii"))
    vault_store.create(home, secret.decode("ascii"), kdf=fast_kdf()).lock()
    raw = derive_key(secret.decode("ascii"), Sidecar.read(home).kdf)
    (tmp_path / "pass").write_bytes(bytes(secret))
    with FakeOllama() as fake:
        proc, seen = start_serve("--insecure-http", "--new-token", "svc", "--passphrase-file",
                                 str(tmp_path / "pass"), env={"OLLAMA_HOST": fake.host})
        try:
            with httpx.Client(base_url=seen["url"], timeout=30,
                              headers={"Authorization": f"Bearer {seen['token']}"}) as client:
                assert client.get("/api/v1/me").status_code == 200
                assert client.get("/ready").status_code in (200, 503)
            found = scan({"hex": hex_of(raw), "raw": raw, "passphrase": secret}, pid=proc.pid)
        finally:
            code, err = stop(proc)
    assert code == 0, err
    assert found["hex"] == 0 and found["raw"] <= 1 and found["passphrase"] <= 1, found
