"""The encrypted vault: real SQLCipher files on disk with sqlite-vec and FTS5."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import numpy as np
import pytest
import sqlcipher3

from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store.sqlite import inspect
from ragdesk.core.store.sqlite import schema as migrations
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.errors import (
    StorageError,
    VaultExists,
    VaultInUse,
    VaultLocked,
    VaultTooNew,
    WrongPassphrase,
)
from tests.conftest import PASSPHRASE, fast_kdf


def file_hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def add_document(v: vault_store.Vault, text: str = "alpha beta", path: str = "/docs/a.txt",
                 collection: str = "default", title: str = "A", vectors: bool = True):
    coll = v.collection(collection)
    assert coll is not None
    if vectors and v.vector_space() is None:
        v.set_vector_space(VectorSpace("test:hash", 4))
    chunks = [ChunkDraft(text, 1, 1, 0, len(text), "Intro"), ChunkDraft(text + " two", 1, 1, 0, 5, "")]
    vecs = None
    if vectors:
        rng = np.random.default_rng(abs(hash(text)) % 2**32)
        vecs = rng.normal(size=(2, 4)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    info = DocumentInfo(coll.id, path, title, "txt", len(text), 1.0,
                        hashlib.sha256(text.encode()).hexdigest(), pages=1)
    return v.put_document(info, chunks, vecs, text.encode())


def test_create_then_unlock_keeps_data(home: Path) -> None:
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    doc = add_document(v)
    v.set_setting("theme", {"dark": True})
    v.lock()

    again = vault_store.unlock(home, PASSPHRASE)
    try:
        assert again.document(doc.id).title == "A"
        assert [c.text for c in again.document_chunks(doc.id)] == ["alpha beta", "alpha beta two"]
        assert again.original(doc.id) == b"alpha beta"
        assert again.get_setting("theme") == {"dark": True}
        events = [e.event for e in again.audit_events()]
        assert events[:2] == ["vault opened", "vault created"][:2] or "vault opened" in events
    finally:
        again.lock()


def test_create_refuses_an_existing_vault(vault: vault_store.Vault, home: Path) -> None:
    before = file_hashes(home)
    with pytest.raises(VaultExists):
        vault_store.create(home, "other", kdf=fast_kdf())
    assert file_hashes(home) == before


def test_empty_passphrase_is_refused(home: Path) -> None:
    with pytest.raises(Exception, match="must not be empty"):
        vault_store.create(home, "", kdf=fast_kdf())
    assert not vault_store.exists(home)


def test_wrong_passphrase_is_clear_and_changes_nothing(home: Path) -> None:
    vault_store.create(home, PASSPHRASE, kdf=fast_kdf()).lock()
    before = file_hashes(home)
    with pytest.raises(WrongPassphrase, match="wrong passphrase or not a RagDesk vault"):
        vault_store.unlock(home, "not it")
    assert file_hashes(home) == before
    vault_store.unlock(home, PASSPHRASE).lock()  # the lock was released after the failure


def test_database_is_encrypted_on_disk(vault: vault_store.Vault, home: Path) -> None:
    add_document(vault)
    header = (home / "vault.db").read_bytes()[:16]
    assert header != b"SQLite format 3\x00"
    with pytest.raises(sqlcipher3.DatabaseError):
        plain = sqlcipher3.connect(str(home / "vault.db"))
        plain.execute("SELECT count(*) FROM sqlite_master").fetchall()


def test_lock_wipes_the_key_and_refuses_further_use(vault: vault_store.Vault) -> None:
    key = vault._key
    vault.lock()
    assert vault.is_locked
    assert not any(key), "the key buffer must be zeroed"
    with pytest.raises(VaultLocked):
        vault.documents()


def test_a_second_open_is_refused_while_in_use(vault: vault_store.Vault, home: Path) -> None:
    # flock is per open file, so this models another process holding the vault.
    with pytest.raises(VaultInUse, match="in use"):
        vault_store.unlock(home, PASSPHRASE)


def test_vault_from_a_newer_release_is_refused_untouched(home: Path) -> None:
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    add_document(v)
    key_hex = v._key.hex()
    v.lock()
    raw = sqlcipher3.connect(str(home / "vault.db"))
    raw.execute(f"PRAGMA key = \"x'{key_hex}'\"")
    raw.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 5}")
    raw.commit()
    raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    before = file_hashes(home)
    with pytest.raises(VaultTooNew, match="newer RagDesk"):
        vault_store.unlock(home, PASSPHRASE)
    assert file_hashes(home) == before


def test_migrations_are_recorded_by_name(vault: vault_store.Vault) -> None:
    rows = vault._query("SELECT version, name FROM schema_migrations ORDER BY version")
    assert rows == [(i + 1, name) for i, (name, _) in enumerate(migrations.MIGRATIONS)]
    assert vault.status().schema_version == migrations.SCHEMA_VERSION


def test_audit_log_is_append_only(vault: vault_store.Vault) -> None:
    vault.audit("question asked", chars=12)
    with pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
        vault.db.execute("UPDATE audit_log SET event = 'x'")
    with pytest.raises(sqlcipher3.IntegrityError, match="append-only"):
        vault.db.execute("DELETE FROM audit_log")
    assert vault.audit_events(1)[0].detail == {"chars": 12}


def test_put_document_replaces_atomically(vault: vault_store.Vault) -> None:
    first = add_document(vault, "old words here")
    second = add_document(vault, "new words there")
    assert len(vault.documents()) == 1
    assert second.id == first.id and second.added_at == first.added_at  # links stay valid
    assert vault.document(first.id).size == len("new words there")
    assert vault.keyword_search("old", 10) == []
    hits = vault.keyword_search("there", 10)
    assert {c.document_id for c in vault.chunks([h[0] for h in hits])} == {second.id}
    assert vault.status().chunks == 2
    assert vault._query("SELECT count(*) FROM chunk_vectors")[0][0] == 2


def test_failed_put_leaves_the_previous_version(vault: vault_store.Vault) -> None:
    first = add_document(vault, "kept words")
    coll = vault.collection("default")
    bad_vectors = np.zeros((2, 7), dtype=np.float32)  # wrong dimension
    info = DocumentInfo(coll.id, "/docs/a.txt", "A2", "txt", 3, 2.0, "h2")
    with pytest.raises(ValueError):
        vault.put_document(info, [ChunkDraft("x", 1, 1, 0, 1)] * 2, bad_vectors, b"x")
    assert vault.document(first.id).title == "A"
    assert vault.keyword_search("kept", 5)


@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "NEAR(a b", "a AND OR NOT", "*", "col:umn", "((()", "🙂 emoji", "", "x" * 10_000,
     "a - b + c ^ d", "'; DROP TABLE chunks; --"],
)
def test_keyword_search_takes_anything_a_user_types(vault: vault_store.Vault, query: str) -> None:
    add_document(vault, "alpha beta gamma")
    assert isinstance(vault.keyword_search(query, 10), list)
    assert vault.status().chunks == 2


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory", "vec0"])
def test_vector_search_filters_by_collection(vault: vault_store.Vault, in_memory: bool) -> None:
    if not in_memory:
        vault.vector_memory_limit = 0  # too big to hold: sqlite-vec's own KNN answers
    a = add_document(vault, "one", path="/a", collection="work")
    b = add_document(vault, "two", path="/b", collection="home")
    query = vault.db.execute("SELECT embedding FROM chunk_vectors LIMIT 1").fetchone()[0]
    vec = np.frombuffer(query, dtype=np.float32)
    everything = vault.vector_search(vec, 10)
    assert len(everything) == 4 and everything[0][1] == pytest.approx(0, abs=1e-5)
    work = vault.collection("work").id
    only = vault.vector_search(vec, 10, [work])
    assert {c.document_id for c in vault.chunks([h[0] for h in only])} == {a.id}
    assert b.id not in {c.document_id for c in vault.chunks([h[0] for h in only])}
    assert (vault.vector_index() is not None) == in_memory
    vault.remove_document(a.id)
    assert {c.document_id for c in vault.chunks([h[0] for h in vault.vector_search(vec, 10)])} == {b.id}


def test_conversations_round_trip(vault: vault_store.Vault) -> None:
    conv = vault.create_conversation("Budget")
    q = vault.add_message(conv.id, "user", "What is the budget?")
    a = vault.add_message(conv.id, "assistant", "", status="streaming")
    vault.update_message(a.id, "It is 5 [1].", citations=[{"n": 1, "page": 3}], status="complete")
    msgs = vault.messages(conv.id)
    assert [m.id for m in msgs] == [q.id, a.id]
    assert msgs[1].citations == [{"n": 1, "page": 3}] and msgs[1].status == "complete"
    vault.rename_conversation(conv.id, "Budget 2026")
    assert vault.conversation(conv.id).title == "Budget 2026"
    vault.delete_conversation(conv.id)
    assert vault.conversations() == [] and vault.messages(conv.id) == []


def test_change_passphrase(vault: vault_store.Vault, home: Path) -> None:
    add_document(vault)
    vault.change_passphrase("a new secret", kdf=fast_kdf())
    vault.lock()
    with pytest.raises(WrongPassphrase):
        vault_store.unlock(home, PASSPHRASE)
    v = vault_store.unlock(home, "a new secret")
    assert v.status().documents == 1
    assert "passphrase changed" in [e.event for e in v.audit_events()]
    v.lock()


def test_each_thread_gets_its_own_connection(vault: vault_store.Vault) -> None:
    import threading

    add_document(vault)
    seen: list[object] = []

    def work() -> None:
        seen.append(vault.db)
        seen.append(len(vault.documents()))

    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert seen[0] is not vault.db and seen[1] == 1


def test_canary_never_reaches_disk_in_plaintext(home: Path, tmp_path: Path) -> None:
    canary = "CANARY-" + secrets.token_hex(12)
    file_name = f"secret-plan-{secrets.token_hex(6)}.txt"
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    v.set_vector_space(VectorSpace("test:hash", 4))
    coll = v.collection(f"collection {canary}")
    text = f"The password is {canary}. " * 50
    chunks = [ChunkDraft(text, 1, 1, 0, len(text), f"Heading {canary}")]
    info = DocumentInfo(coll.id, f"/home/u/{file_name}", f"Title {canary}", "txt", len(text), 1.0, "h")
    v.put_document(info, chunks, np.ones((1, 4), dtype=np.float32) / 2, text.encode() * 20)
    conv = v.create_conversation(f"Ask {canary}")
    v.add_message(conv.id, "user", f"what is {canary}?")
    v.set_setting("last_query", canary)
    v.audit("question asked", question=canary)
    v.keyword_search(canary, 5)
    v.remove_document(v.documents()[0].id)  # secure_delete: freed pages are zeroed

    def assert_clean() -> None:
        needles = [canary.encode(), canary.encode("utf-16-le"), file_name.encode(),
                   file_name.encode("utf-16-le")]
        for folder in (home, tmp_path / "tmp"):
            for p in folder.rglob("*"):
                assert file_name not in p.name
                if p.is_file():
                    data = p.read_bytes()
                    for needle in needles:
                        assert needle not in data, f"{needle!r} found in {p}"

    assert_clean()  # while unlocked: the WAL holds recent pages
    v.lock()
    assert_clean()
    assert sorted(p.name for p in home.iterdir()) == ["vault.db", "vault.json", "vault.lock"] or all(
        p.name.startswith("vault.") for p in home.iterdir()
    )


def test_interrupted_passphrase_change_settles_on_next_unlock(vault: vault_store.Vault, home: Path) -> None:
    """The sidecar carries a pending salt while a rekey runs; either passphrase opens the vault."""
    add_document(vault)
    import json

    sidecar = json.loads((home / "vault.json").read_text())
    pending = fast_kdf()
    sidecar["pending"] = pending.to_json()
    (home / "vault.json").write_text(json.dumps(sidecar))  # crash after this step, before rekey
    vault.lock()
    v = vault_store.unlock(home, PASSPHRASE)
    assert v.status().documents == 1
    v.lock()
    assert "pending" not in json.loads((home / "vault.json").read_text())


def test_a_rekey_done_before_the_crash_opens_with_the_pending_key(vault: vault_store.Vault,
                                                                   home: Path) -> None:
    """The crash came after the rekey, before the sidecar was settled: the new passphrase opens
    the vault through the pending parameters, for the vault and for a read-only look alike."""
    import json

    add_document(vault)
    old = json.loads((home / "vault.json").read_text())
    vault.change_passphrase("a new secret", kdf=fast_kdf())
    vault.lock()
    settled = json.loads((home / "vault.json").read_text())
    (home / "vault.json").write_text(json.dumps({**old, "pending": settled["kdf"]}))
    with inspect.open_readonly(home, "a new secret") as opened:
        assert opened.params.to_json() == settled["kdf"]
        assert opened.health(deep=False).documents == 1
    with pytest.raises(WrongPassphrase):
        vault_store.unlock(home, PASSPHRASE)
    v = vault_store.unlock(home, "a new secret")
    assert v.status().documents == 1
    v.lock()
    assert json.loads((home / "vault.json").read_text())["kdf"] == settled["kdf"]
    assert "pending" not in json.loads((home / "vault.json").read_text())


@pytest.mark.parametrize(
    "damage", ["{not json", "[]", '{"format": 1}', '{"format": 1, "kdf": {"algorithm": "x"}}'])
def test_a_damaged_key_file_is_a_clear_error(vault: vault_store.Vault, home: Path, damage: str) -> None:
    vault.lock()
    (home / "vault.json").write_text(damage)
    with pytest.raises(StorageError, match=r"vault\.json"):
        vault_store.unlock(home, PASSPHRASE)
    with pytest.raises(StorageError, match=r"vault\.json"), inspect.open_readonly(home, PASSPHRASE):
        pass


def test_a_key_file_from_a_newer_release_is_refused(vault: vault_store.Vault, home: Path) -> None:
    import json

    vault.lock()
    (home / "vault.json").write_text(json.dumps({"format": 99, "kdf": {"new": "layout"}}))
    before = file_hashes(home)
    with pytest.raises(VaultTooNew, match="newer RagDesk"):
        vault_store.unlock(home, PASSPHRASE)
    assert file_hashes(home) == before


def test_kdf_cost_is_recorded_per_vault(home: Path) -> None:
    import json

    vault_store.create(home, PASSPHRASE, kdf=fast_kdf()).lock()
    kdf = json.loads((home / "vault.json").read_text())["kdf"]
    assert kdf["algorithm"] == "argon2id" and kdf["memory_kib"] == 8192 and len(kdf["salt"]) == 32
    assert os.stat(home / "vault.json").st_size < 1000
