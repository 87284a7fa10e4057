"""`ragdesk backup` / `ragdesk restore`: consistent encrypted copies of a vault in use, verified
restores that never lose the vault they replace, retention pruning."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store.sqlite import backup, inspect, keyfile
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.errors import VaultInUse, WrongPassphrase
from tests.conftest import PASSPHRASE, REPO, fast_kdf, run_cli
from tests.fakes.embedder import HashEmbedder
from tests.integration.test_index_cli import cisi_folder

ENV = {"RAGDESK_PASSPHRASE": PASSPHRASE}
CANARY = "zanzibar-quokka-7731"  # must never appear in a backup file in plain text


def fill(v: vault_store.Vault, documents: int = 12, tag: str = "") -> None:
    """Documents with chunks, vectors and originals, plus a conversation, without a model."""
    embedder = HashEmbedder(dimension=32)
    v.set_vector_space(VectorSpace(embedder.name, embedder.dimension))
    coll = v.collection("default")
    for i in range(documents):
        texts = [f"{CANARY} document {tag}{i} part {j} about {['ships', 'tea', 'maps'][j % 3]}"
                 for j in range(3)]
        drafts = [ChunkDraft(t, 1, 1, 0, len(t)) for t in texts]
        info = DocumentInfo(coll.id, f"/docs/{tag}{i}.txt", f"Doc {tag}{i}", "text", 100, 1.0,
                            f"hash-{tag}{i}")
        v.put_document(info, drafts, embedder.embed(texts), original=f"{CANARY} {tag}{i}".encode())
    conv = v.create_conversation(f"About ships {tag}")
    v.add_message(conv.id, "user", f"What about ships? {CANARY}")
    v.add_message(conv.id, "assistant", "Ships [1].", citations=[{"n": 1, "path": "/docs/0.txt"}])


def everything(home: Path) -> dict[str, object]:
    """Every document, chunk, vector, original, conversation and message of the vault in `home`."""
    with vault_store.unlock(home, PASSPHRASE) as v:
        docs = v.documents()
        return {
            "documents": [(d.id, d.path, d.title, d.content_hash, d.chunks, d.added_at) for d in docs],
            "chunks": {d.path: [c.text for c in v.document_chunks(d.id)] for d in docs},
            "originals": {d.path: v.original(d.id) for d in docs},
            "vectors": sorted(v._query("SELECT chunk_id, embedding FROM chunk_vectors")),
            "conversations": [(c.id, c.title) for c in v.conversations()],
            "messages": {c.id: [(m.role, m.content, m.citations) for m in v.messages(c.id)]
                         for c in v.conversations()},
        }


@pytest.fixture
def filled(home: Path) -> Path:
    with vault_store.create(home, PASSPHRASE, kdf=fast_kdf()) as v:
        fill(v)
    return home


def test_backup_is_encrypted_verified_and_opens_only_with_the_passphrase(filled: Path,
                                                                          tmp_path: Path) -> None:
    r = run_cli("backup", str(tmp_path / "backups"), "--json", env=ENV)
    assert r.returncode == 0, r.stderr
    made = Path(json.loads(r.stdout)["path"])
    assert made.parent == tmp_path / "backups" and made.name.startswith(backup.PREFIX)
    assert sorted(p.name for p in made.iterdir()) == ["manifest.json", "vault.db", "vault.json"]
    for f in made.iterdir():  # nothing readable: no canary, no SQLite header
        data = f.read_bytes()
        assert CANARY.encode() not in data and b"ships" not in data, f.name
    assert not inspect.has_plaintext_header(made / "vault.db")
    health = backup.check_backup(made, PASSPHRASE)
    assert health.documents == 12 and health.chunks == 36 and health.vectors == 36
    assert health.messages == 2
    with pytest.raises(WrongPassphrase):
        backup.check_backup(made, "not the passphrase")


def _documents(home: Path) -> int:
    with inspect.open_readonly(home, PASSPHRASE) as opened:  # lock-free, read-only
        return opened.health(deep=False).documents


def _wait_for_documents(home: Path, indexer: subprocess.Popen[str], at_least: int,
                        timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline and indexer.poll() is None:
        seen = _documents(home)
        if seen >= at_least:
            break
        time.sleep(0.2)
    return seen


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_backup_while_indexing_runs_in_another_process(locked_vault: Path, tmp_path: Path) -> None:
    """The indexer holds the vault's lock and commits document after document; the backup is
    taken in between, from another process, and is a consistent copy. Then the indexer is
    stopped (Ctrl+C), which keeps what it indexed: how long a full run takes does not matter."""
    folder = cisi_folder(tmp_path / "cisi", 1000)
    env = dict(os.environ, **ENV)
    indexer = subprocess.Popen(
        [sys.executable, "-m", "ragdesk", "index", str(folder)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert _wait_for_documents(locked_vault, indexer, 5) >= 5
        assert indexer.poll() is None, "the indexer finished before the backup could start"
        with pytest.raises(VaultInUse):  # the indexer holds the vault's lock all along
            vault_store.unlock(locked_vault, PASSPHRASE)

        r = run_cli("backup", str(tmp_path / "backups"), "--json", env=ENV)
        assert r.returncode == 0, r.stderr
        made = Path(json.loads(r.stdout)["path"])
        after_backup = _documents(locked_vault)
        # The writer was not held up: it keeps committing after the backup.
        assert _wait_for_documents(locked_vault, indexer, after_backup + 3) >= after_backup + 3
        assert indexer.poll() is None, "indexing 1000 files should still be running"
        indexer.send_signal(signal.SIGINT)
        _out, err = indexer.communicate(timeout=120)
    finally:
        if indexer.poll() is None:
            indexer.kill()
            indexer.wait()
    assert indexer.returncode == 130, err  # interrupted; what was indexed is kept
    final = _documents(locked_vault)

    health = backup.check_backup(made, PASSPHRASE)  # cipher_integrity_check, integrity_check
    assert not health.problems
    assert 5 <= health.documents <= after_backup < final
    assert health.vectors == health.chunks  # each document is committed whole or not at all
    with inspect.open_readonly(made, PASSPHRASE) as copy:
        assert inspect.chunk_count_mismatches(copy.conn) == 0

    # The backup restores into a vault that the normal code path opens and searches.
    restored = tmp_path / "restored"
    r = run_cli("restore", str(made), "--home", str(restored), env=ENV)
    assert r.returncode == 0, r.stderr
    with vault_store.unlock(restored, PASSPHRASE) as v:
        st = v.status()
        assert (st.documents, st.chunks) == (health.documents, health.chunks)
        assert v._query("PRAGMA integrity_check")[0][0] == "ok"
        assert v.keyword_search("information retrieval", k=3)


def test_restore_round_trip_keeps_everything(filled: Path, tmp_path: Path) -> None:
    before = everything(filled)
    dest = tmp_path / "backups"
    made = backup.create_backup(filled, PASSPHRASE, dest).path

    # Afterwards the vault changes: a document goes, a conversation is added.
    with vault_store.unlock(filled, PASSPHRASE) as v:
        v.remove_document(v.documents()[0].id)
        fill(v, documents=2, tag="later-")
    assert everything(filled) != before

    r = run_cli("restore", str(dest), "--yes", "--json", env=ENV)  # a folder of backups: newest
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert Path(out["restored"]) == made
    assert everything(filled) == before

    # The vault that was replaced is kept aside, whole, and still opens.
    aside = Path(out["replaced"])
    assert aside.parent == filled and aside.name.startswith("replaced-")
    assert {"vault.db", "vault.json"} <= {p.name for p in aside.iterdir()}
    with vault_store.unlock(aside, PASSPHRASE) as v:
        assert any(d.path.startswith("/docs/later-") for d in v.documents())


def test_restore_refuses_to_overwrite_without_yes(filled: Path, tmp_path: Path) -> None:
    made = backup.create_backup(filled, PASSPHRASE, tmp_path / "b").path
    with vault_store.unlock(filled, PASSPHRASE) as v:
        v.create_conversation("made after the backup")
    before = everything(filled)
    r = run_cli("restore", str(made), env=ENV)  # no terminal: no prompt, a refusal
    assert r.returncode == 1
    assert "--yes" in r.stderr and "already exists" in r.stderr
    assert everything(filled) == before
    assert not list(filled.glob("replaced-*"))
    with pytest.raises(backup.NeedsConfirmation):
        backup.restore(made, filled, PASSPHRASE, replace=lambda src, home: False)


def test_restore_into_an_empty_folder_and_a_vault_in_use(filled: Path, tmp_path: Path) -> None:
    made = backup.create_backup(filled, PASSPHRASE, tmp_path / "b").path
    fresh = tmp_path / "fresh"
    result = backup.restore(made, fresh, PASSPHRASE)
    assert result.replaced is None
    assert everything(fresh) == everything(filled)
    with vault_store.unlock(filled, PASSPHRASE), pytest.raises(VaultInUse):
        backup.restore(made, filled, PASSPHRASE, replace=True)


def test_backup_and_restore_with_a_wrong_passphrase_fail_clearly(filled: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    r = run_cli("backup", str(dest), env={"RAGDESK_PASSPHRASE": "wrong"})
    assert r.returncode == 1
    assert "wrong passphrase" in r.stderr and "Traceback" not in r.stderr
    assert not dest.exists() or not any(dest.iterdir()), "no backup or partial folder is left"

    made = backup.create_backup(filled, PASSPHRASE, dest).path
    r = run_cli("restore", str(made), "--yes", "--home", str(tmp_path / "other"),
                env={"RAGDESK_PASSPHRASE": "wrong"})
    assert r.returncode == 1 and "wrong passphrase" in r.stderr
    assert not (tmp_path / "other" / "vault.db").exists()


def test_a_damaged_backup_is_refused_and_the_vault_left_alone(filled: Path, tmp_path: Path) -> None:
    made = backup.create_backup(filled, PASSPHRASE, tmp_path / "b").path
    db = made / "vault.db"
    data = bytearray(db.read_bytes())
    data[len(data) // 2] ^= 0xFF
    db.write_bytes(bytes(data))
    before = everything(filled)
    with pytest.raises(backup.BackupError, match="checksum"):
        backup.restore(made, filled, PASSPHRASE, replace=True)
    (made / "manifest.json").unlink()  # without the checksum, the page check still catches it
    with pytest.raises(backup.BackupError, match="integrity"):
        backup.restore(made, filled, PASSPHRASE, replace=True)
    assert everything(filled) == before


def test_keep_prunes_the_oldest_backups(filled: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    dest.mkdir()
    (dest / "notes.txt").write_text("not a backup")  # other files are never touched
    (dest / "ragdesk-backup-19990101T000000Z").mkdir()  # no vault.db: not a backup, left alone
    made = [backup.create_backup(filled, PASSPHRASE, dest).path for _ in range(3)]
    r = run_cli("backup", str(dest), "--keep", "2", "--json", env=ENV)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    newest = Path(out["path"])
    assert [Path(p) for p in out["pruned"]] == made[:2]
    assert [b.path for b in backup.list_backups(dest)] == [made[2], newest]
    assert (dest / "notes.txt").exists() and (dest / "ragdesk-backup-19990101T000000Z").exists()
    r = run_cli("backup", str(dest), "--keep", "0", env=ENV)
    assert r.returncode == 2

    r = run_cli("backup", str(dest), "--keep", "1", env=ENV)  # as a person reads it
    assert r.returncode == 0, r.stderr
    assert "Backup written and verified" in r.stdout and "iB" in r.stdout
    assert len(backup.list_backups(dest)) == 1


def test_an_interrupted_backup_leaves_no_folder_that_looks_complete(filled: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "backups"

    def broken(*args: object, **kwargs: object) -> None:
        raise backup.BackupError("simulated failure while verifying")

    monkeypatch.setattr(backup, "verify_copy", broken)
    with pytest.raises(backup.BackupError):
        backup.create_backup(filled, PASSPHRASE, dest)
    assert list(dest.iterdir()) == []
    # A partial folder left by a killed run is recognised as unfinished and pruned when stale.
    stale = dest / f".{backup.PREFIX}20000101T000000Z.partial"
    stale.mkdir()
    os.utime(stale, (0, 0))
    monkeypatch.undo()
    backup.create_backup(filled, PASSPHRASE, dest, keep=3)
    assert not stale.exists() and len(backup.list_backups(dest)) == 1


def test_backup_of_a_folder_without_a_vault(home: Path, tmp_path: Path) -> None:
    r = run_cli("backup", str(tmp_path / "b"), env=ENV)
    assert r.returncode == 1 and "no vault" in r.stderr


def test_vectors_survive_the_copy_bit_for_bit(filled: Path, tmp_path: Path) -> None:
    made = backup.create_backup(filled, PASSPHRASE, tmp_path / "b").path
    restored = tmp_path / "r"
    backup.restore(made, restored, PASSPHRASE)
    with vault_store.unlock(restored, PASSPHRASE) as v:
        q = HashEmbedder(dimension=32).embed_query("ships")
        hits = v.vector_search(np.asarray(q), k=3)
        assert len(hits) == 3
    assert everything(restored)["vectors"] == everything(filled)["vectors"]


def test_a_backup_from_a_newer_release_is_not_restored(filled: Path, tmp_path: Path) -> None:
    made = backup.create_backup(filled, PASSPHRASE, tmp_path / "b").path
    key, _ = keyfile.matching_key(made / "vault.db", PASSPHRASE, keyfile.Sidecar.read(made))
    conn = keyfile.connect(made / "vault.db", key, read_only=False)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    (made / "manifest.json").unlink()  # the checksum no longer matches; that is not the point here
    with pytest.raises(backup.BackupError, match="newer RagDesk"):
        backup.restore(made, tmp_path / "elsewhere", PASSPHRASE)
    assert not (tmp_path / "elsewhere" / "vault.db").exists()


def test_a_backup_made_after_pruning_in_the_same_second_sorts_newest(tmp_path: Path) -> None:
    now = 1_790_000_000.0
    stamp = backup._utc_stamp(now)
    (tmp_path / f"{backup.PREFIX}{stamp}-3").mkdir()  # the first two of this second were pruned
    (tmp_path / f".{backup.PREFIX}{stamp}-4.partial").mkdir()  # one being written
    name = backup._new_name(tmp_path, now)
    assert name == f"{backup.PREFIX}{stamp}-5"
    (tmp_path / "empty").mkdir()
    assert backup._new_name(tmp_path / "empty", now) == f"{backup.PREFIX}{stamp}"
