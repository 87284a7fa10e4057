"""`ragdesk doctor`: a healthy vault passes, a damaged one fails with a remedy, Ollama down is
reported, and checks that need the passphrase are skipped (and said to be) without it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ragdesk.cli import doctor
from ragdesk.cli.doctor import system as doctor_system
from ragdesk.core.embedding import BUILTIN_MODEL
from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import PASSPHRASE, fast_kdf, run_cli
from tests.fakes.ollama import FakeOllama

ENV = {"RAGDESK_PASSPHRASE": PASSPHRASE}
VAULT_CHECKS = {"vault.unlock", "vault.cipher_integrity", "vault.integrity", "vault.schema",
                "vault.vectors", "vault.audit", "vault.embedder"}


def healthy_vault(home: Path, documents: int = 40) -> Path:
    """A vault whose vectors claim the built-in model's space (random unit vectors will do)."""
    rng = np.random.default_rng(7)
    with vault_store.create(home, PASSPHRASE, kdf=fast_kdf()) as v:
        v.set_vector_space(VectorSpace(f"builtin:{BUILTIN_MODEL}", 384))
        coll = v.collection("default")
        for i in range(documents):
            texts = [f"document {i} paragraph {j} " + "filler text " * 60 for j in range(4)]
            vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            v.put_document(
                DocumentInfo(coll.id, f"/d/{i}.txt", f"Doc {i}", "text", 10, 1.0, f"h{i}"),
                [ChunkDraft(t, 1, 1, 0, len(t)) for t in texts], vectors, original=b"x" * 2000,
            )
        conv = v.create_conversation("chat")
        v.add_message(conv.id, "user", "hello")
    return home


def statuses(report: doctor.Report) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_healthy_vault_passes(home: Path, fake_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    healthy_vault(home)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    r = run_cli("doctor", "--json", env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is True and report["skipped"] == ["bundle"]  # a dev install has no manifest
    by_name = {c["name"]: c for c in report["checks"]}
    for name in [*VAULT_CHECKS, "runtime", "embedder.builtin", "data.folder", "vault.files",
                 "ollama", "disk"]:
        assert by_name[name]["status"] == "pass", by_name[name]
    assert "160 chunks" in by_name["vault.vectors"]["summary"]
    assert by_name["bundle"]["summary"].startswith("not a bundle, skipped")
    assert by_name["ollama"]["details"]["version"] and by_name["ollama"]["details"]["models"]
    assert all(c["status"] in ("pass", "warn") for c in report["checks"] if c["name"] != "bundle")

    text = run_cli("doctor", env=ENV)
    assert text.returncode == 0
    assert "No problems" in text.stdout and "[ok  ] vault.integrity" in text.stdout


def test_damaged_vault_fails_with_a_remedy(home: Path, tmp_path: Path) -> None:
    healthy_vault(home)
    damaged = tmp_path / "damaged"
    shutil.copytree(home, damaged)
    db = damaged / "vault.db"
    data = bytearray(db.read_bytes())
    assert len(data) > 20 * 4096
    for offset in (len(data) // 2, len(data) // 2 + 4096 * 3):  # inside two pages, past page 1
        for i in range(16):
            data[offset + i] ^= 0x5A
    db.write_bytes(bytes(data))

    r = run_cli("doctor", "--json", "--home", str(damaged), env=ENV)
    assert r.returncode == 1, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is False
    by_name = {c["name"]: c for c in report["checks"]}
    cipher = by_name["vault.cipher_integrity"]
    assert cipher["status"] == "fail"
    assert "ragdesk restore" in cipher["remedy"]
    assert cipher["details"]["errors"]
    text = run_cli("doctor", "--home", str(damaged), env=ENV)
    assert text.returncode == 1
    assert "[FAIL] vault.cipher_integrity" in text.stdout and "-> restore the latest backup" in text.stdout

    # The original is untouched and still healthy.
    assert statuses(doctor.run(home, PASSPHRASE, ollama_host=None))["vault.cipher_integrity"] == "pass"


def test_ollama_down_is_reported_with_a_remedy(home: Path, ollama_refused_host: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    healthy_vault(home, documents=2)
    monkeypatch.setenv("OLLAMA_HOST", ollama_refused_host)
    r = run_cli("doctor", "--json", env=ENV)
    assert r.returncode == 0, r.stderr  # the app works without Ollama (extractive answers)
    check = next(c for c in json.loads(r.stdout)["checks"] if c["name"] == "ollama")
    assert check["status"] == "warn"
    assert "not reachable" in check["summary"] and ollama_refused_host in check["summary"]
    assert "ollama serve" in check["remedy"]
    assert check["details"]["from"] == "OLLAMA_HOST"


def test_ollama_without_the_configured_model(home: Path, fake_ollama: FakeOllama) -> None:
    healthy_vault(home, documents=1)
    with vault_store.unlock(home, PASSPHRASE) as v:
        v.set_setting("chat_model", "no-such-model:7b")
    check = doctor.run(home, PASSPHRASE, ollama_host=fake_ollama.host).check("ollama")
    assert check.status == "warn" and "no-such-model:7b" in check.summary
    assert "ollama pull no-such-model:7b" in check.remedy


def test_without_passphrase_vault_checks_are_skipped_and_named(home: Path, ollama_refused_host: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    healthy_vault(home, documents=1)
    monkeypatch.setenv("OLLAMA_HOST", ollama_refused_host)
    r = run_cli("doctor", "--json")  # no passphrase, no terminal: no prompt
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert set(report["skipped"]) == VAULT_CHECKS | {"bundle"}
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["vault.files"]["status"] == "pass"  # no passphrase needed for that
    assert "needs the passphrase" in by_name["vault.unlock"]["summary"]
    text = run_cli("doctor")
    assert "8 check(s) skipped" in text.stdout


def test_wrong_passphrase_and_missing_vault(home: Path, tmp_path: Path) -> None:
    healthy_vault(home, documents=1)
    report = doctor.run(home, "not it", ollama_host="http://127.0.0.1:9")
    assert statuses(report)["vault.unlock"] == "fail" and not report.ok
    assert "passphrase" in report.check("vault.unlock").remedy

    empty = doctor.run(tmp_path / "nowhere", PASSPHRASE, ollama_host="http://127.0.0.1:9")
    assert empty.ok  # nothing is broken; there is just no vault yet
    assert empty.check("vault.files").status == "warn"
    assert "ragdesk init" in empty.check("vault.files").remedy


def test_vectors_missing_for_chunks_fail(home: Path) -> None:
    healthy_vault(home, documents=3)
    # simulate damage the application itself never leaves
    with vault_store.unlock(home, PASSPHRASE) as v, v._transaction() as db:
        db.execute("DELETE FROM chunk_vectors WHERE chunk_id IN (SELECT id FROM chunks LIMIT 2)")
    check = doctor.run(home, PASSPHRASE, ollama_host="http://127.0.0.1:9").check("vault.vectors")
    assert check.status == "fail" and "12 chunks but 10 vectors" in check.summary
    assert "ragdesk index" in check.remedy


def test_embedder_mismatch_is_a_warning(home: Path) -> None:
    healthy_vault(home, documents=1)
    with vault_store.unlock(home, PASSPHRASE) as v:
        v.set_setting("embedder", {"kind": "ollama", "model": "nomic-embed-text"})
    report = doctor.run(home, PASSPHRASE, ollama_host="http://127.0.0.1:9")
    check = report.check("vault.embedder")
    assert check.status == "warn"
    assert "builtin:" in check.summary and "ollama:nomic-embed-text" in check.summary
    # With the embedder in Ollama, Ollama down is no longer a mere warning.
    ollama = report.check("ollama")
    assert ollama.status == "fail" and "nomic-embed-text" in ollama.summary


def test_doctor_works_while_the_vault_is_open_elsewhere(home: Path) -> None:
    healthy_vault(home, documents=2)
    with vault_store.unlock(home, PASSPHRASE):  # e.g. the GUI has it open and holds the lock
        report = doctor.run(home, PASSPHRASE, ollama_host="http://127.0.0.1:9")
    assert statuses(report)["vault.integrity"] == "pass"
    assert report.ok


def test_low_disk_and_memory_are_reported(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor_system.shutil, "disk_usage",
                        lambda p: usage(10 * 2**30, 10 * 2**30, 100 * 2**20))
    monkeypatch.setattr(doctor_system, "available_memory", lambda: 100 * 2**20)
    report = doctor.run(home, None, ollama_host="http://127.0.0.1:9")
    assert report.check("disk").status == "fail" and report.check("disk").remedy
    assert report.check("memory").status == "fail"
    assert not report.ok
