"""Shared fixtures: every test gets its own data folder and temp folder, and cheap key
derivation (the real Argon2id cost is measured in benchmarks/bench_unlock.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ragdesk.core.store.sqlite import vault as vault_store

# Headless by default, also when pytest is run by hand rather than through `make test` (Qt
# aborts without a display otherwise).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from ragdesk.core.store.keys import KdfParams

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
CISI = SHARED / "data" / "cisi"

PASSPHRASE = "correct horse battery staple"

pytest_plugins = ["tests.fakes.fixtures", "tests.fakes.postgres", "tests.fakes.server"]


def fast_kdf() -> KdfParams:
    """Argon2id at a trivial cost so tests that open vaults many times stay fast."""
    return KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """RAGDESK_HOME and the temp folder point inside this test's tmp_path."""
    home = tmp_path / "home"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("RAGDESK_HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.delenv("RAGDESK_PASSPHRASE", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    yield home


@pytest.fixture
def home(isolated_dirs: Path) -> Path:
    return isolated_dirs


@pytest.fixture
def vault(home: Path) -> Iterator[vault_store.Vault]:
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    yield v
    v.lock()


@pytest.fixture
def locked_vault(home: Path) -> Path:
    """A vault made with cheap key derivation, closed again: for CLI subprocess tests."""
    vault_store.create(home, PASSPHRASE, kdf=fast_kdf()).lock()
    return home


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 120) -> Run:
    """Run `python -m ragdesk ARGS` as a user would, in a child process."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "ragdesk", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        cwd=REPO,
    )
    assert "ZERO-EGRESS VIOLATION" not in proc.stderr, proc.stderr
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():  # type: ignore[no-untyped-def]
    return run_cli
