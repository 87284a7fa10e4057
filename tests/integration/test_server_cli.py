"""`ragdesk token ...` and `ragdesk serve` as a user runs them: child processes, the vault unlocked
from RAGDESK_PASSPHRASE or --passphrase-file, the fake Ollama as the model."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.server.tls import client_context, fingerprint
from tests.conftest import PASSPHRASE, REPO, run_cli
from tests.fakes.ollama import FakeOllama

pytestmark = pytest.mark.timeout(90)
ENV = {"RAGDESK_PASSPHRASE": PASSPHRASE}


def test_token_commands(locked_vault: Path) -> None:
    r = run_cli("token", "create", "ana", "--collections", "legal", env=ENV)
    assert r.returncode == 1 and "no collection named 'legal'" in r.stderr

    r = run_cli("token", "create", "ana", env=ENV)
    assert r.returncode == 0, r.stderr
    secret = r.stdout.strip()
    assert re.fullmatch(r"rd_[A-Za-z0-9_-]{43}", secret) and "shown only this once" in r.stderr
    r = run_cli("token", "create", "ana", env=ENV)
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run_cli("token", "create", "boss", "--admin", env=ENV)
    assert r.returncode == 0 and "admin" in r.stderr

    listed = json.loads(run_cli("token", "list", "--json", env=ENV).stdout)
    assert [(t["name"], t["admin"], t["collections"]) for t in listed] == [
        ("ana", False, None), ("boss", True, None)]
    assert secret not in run_cli("token", "list", env=ENV).stdout

    assert run_cli("token", "revoke", "ana", env=ENV).returncode == 0
    r = run_cli("token", "revoke", "ana", env=ENV)
    assert r.returncode == 1 and "no active token" in r.stderr
    assert [t["name"] for t in json.loads(run_cli("token", "list", "--json", env=ENV).stdout)] == ["boss"]
    assert run_cli("token", env=ENV).returncode == 2

    # Only the hash is stored.
    with vault_store.unlock(locked_vault, PASSPHRASE) as v:
        stored = v.tokens(include_revoked=True)
        assert all(secret not in (t.token_hash, t.name) for t in stored)
        assert {"token created", "token revoked"} <= {e.event for e in v.audit_events()}


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with FakeOllama() as f:
        yield f


def start_serve(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, **env})
    seen: dict[str, str] = {}
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.fullmatch(r"rd_\S+\n", line):
            seen["token"] = line.strip()
        if m := re.search(r"serving this vault on (\S+)", line):
            seen["url"] = m.group(1)
            if fp := re.search(r"\(certificate SHA-256 ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})\)$", line):
                seen["fingerprint"] = fp.group(1)  # on the start-up line itself
            break
    if "url" not in seen:
        proc.kill()
        errors = proc.stderr.read() if proc.stderr else ""
        raise AssertionError(f"serve did not start: {''.join(lines)} {errors}")
    return proc, seen


def stop(proc: subprocess.Popen[str], how: int = signal.SIGINT) -> tuple[int, str]:
    proc.send_signal(how)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    assert "ZERO-EGRESS VIOLATION" not in err, err
    return proc.returncode, err


def test_serve_over_tls_with_the_vaults_certificate(locked_vault: Path, fake: FakeOllama) -> None:
    proc, seen = start_serve("--new-token", "cli-user", env={**ENV, "OLLAMA_HOST": fake.host})
    try:
        url = seen["url"]
        assert url.startswith("https://127.0.0.1:")
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        pem = ssl.get_server_certificate(("127.0.0.1", port))
        assert fingerprint(pem) == seen["fingerprint"], "the fingerprint printed is the one served"
        with httpx.Client(base_url=url, verify=client_context(pem), timeout=30,
                          headers={"Authorization": f"Bearer {seen['token']}"}) as c:
            assert c.get("/api/v1/me").json()["name"] == "cli-user"
            with c.stream("POST", "/api/v1/ask", json={"question": "anything indexed?"}) as r:
                body = "".join(r.iter_text())
            assert r.status_code == 200 and "event: done" in body
            assert c.get("/ready").json()["checks"]["ollama"]["ok"]
        # The server holds the vault: the CLI says so, and where tokens are made meanwhile.
        r = run_cli("token", "create", "late", env=ENV)
        assert r.returncode == 1 and "in use" in r.stderr and "POST /api/v1/tokens" in r.stderr
    finally:
        code, err = stop(proc)
    assert code == 0, err
    with vault_store.unlock(locked_vault, PASSPHRASE) as v:
        events = [e.event for e in v.audit_events(200)]
        assert {"server started", "server stopped", "api access", "server certificate created"} <= set(events)
        assert v.server_identity() is not None


def test_serve_plain_http_only_when_asked_and_loudly(locked_vault: Path, fake: FakeOllama,
                                                     tmp_path: Path) -> None:
    secret_file = tmp_path / "pass"
    secret_file.write_text(PASSPHRASE + "\n")
    proc, seen = start_serve("--insecure-http", "--passphrase-file", str(secret_file), "--new-token", "plain",
                             env={"OLLAMA_HOST": fake.host})
    try:
        assert seen["url"].startswith("http://127.0.0.1:")
        r = httpx.get(seen["url"] + "api/v1/me", headers={"Authorization": f"Bearer {seen['token']}"})
        assert r.status_code == 200
    finally:
        code, err = stop(proc, signal.SIGTERM)  # as systemd stops it
    assert code == 0, err
    assert "WARNING: --insecure-http: TLS IS OFF" in err and "PLAIN TEXT" in err
