"""`ragdesk migrate`: a real vault with real documents copied to a real PostgreSQL and back,
verified; interrupted (Ctrl+C, SIGKILL) and run again without duplicates; bad inputs refused
with the source untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from ragdesk.core.indexing import Indexer, IndexOptions
from ragdesk.core.records import ApiToken, ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.retrieval import Retriever, SearchOptions
from ragdesk.core.store.base import matching_token
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.core.store.transfer import HALFVEC_TOLERANCE, Transfer, TransferConflict
from tests.conftest import CORPUS, PASSPHRASE, REPO, fast_kdf, run_cli
from tests.fakes.embedder import HashEmbedder
from tests.fakes.postgres import open_pg

TARGET_PASSPHRASE = "a different server passphrase"
FILES = ["small-table.pdf", "test_open2.docx", "test_markdown_bad_unicode.md", "test-linebreaks.pdf",
         "github_sample.pdf", "test_open2.html", "bug1971.pdf", "test_open2.fb2"]
QUERIES = ["table of contents", "line breaks in text", "github sample", "unicode markdown",
           "hello world paragraph"]


def env(**extra: str) -> dict[str, str]:
    return {"RAGDESK_PASSPHRASE": PASSPHRASE, "RAGDESK_TARGET_PASSPHRASE": TARGET_PASSPHRASE,
            "RAGDESK_PG_VECTOR_INDEX": "exact", **extra}


def add_extras(v: Any) -> None:
    """What a vault holds besides documents: settings, chats with citations, tokens, identity."""
    v.set_setting("chat_model", "llama3.2:3b")
    v.set_setting("num_ctx", 8192)
    v.set_setting("embedder", {"kind": "builtin"})
    hits = Retriever(v, HashEmbedder()).search("table of contents", k=3)
    assert hits, "the corpus files were indexed"
    from ragdesk.core.chat import Source

    conv = v.create_conversation("Tables")
    v.add_message(conv.id, "user", "Where is the table?")
    v.add_message(conv.id, "assistant", "In the first file [1][2].",
                  citations=[Source(i + 1, h).citation() for i, h in enumerate(hits[:2])],
                  status="complete", meta={"model": "llama3.2:3b"})
    other = v.create_conversation("Stopped answer")
    v.add_message(other.id, "user", "And the line breaks?")
    v.add_message(other.id, "assistant", "They are", status="stopped")
    v.create_token("laptop", hashlib.sha256(b"secret one").hexdigest(), ["default"])
    v.create_token("old", hashlib.sha256(b"secret two").hexdigest(), admin=True)
    v.revoke_token("old")
    v.set_server_identity("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                          "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n")
    v.audit("search", query="tables", hits=3)


@pytest.fixture(scope="module")
def source_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed vault with real corpus files indexed (HashEmbedder), made once per module."""
    root = tmp_path_factory.mktemp("source")
    docs = root / "docs"
    docs.mkdir()
    for name in FILES:
        shutil.copy(CORPUS / name, docs / name)
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 not really")  # a failed document travels too
    home = root / "vault"
    with vault_store.create(home, PASSPHRASE, kdf=fast_kdf()) as v:
        last = list(Indexer(v, HashEmbedder(), IndexOptions(workers=0)).run([docs]))[-1]
        assert last.indexed >= len(FILES) - 1 and last.failed >= 1
        add_extras(v)
    return home


@pytest.fixture
def source(source_template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "source"
    shutil.copytree(source_template, home)
    return home


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pg_count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def run(source: Any, target: Any):  # type: ignore[no-untyped-def]
    steps = list(Transfer(source, target).run())
    return steps[-1]


def hits(store: Any, mode: str, **options: Any) -> list[list[tuple[str, int, int]]]:
    retriever = Retriever(store, HashEmbedder(), SearchOptions(mode=mode, **options))
    return [[(h.path, h.page, h.char_start) for h in retriever.search(q, k=5)] for q in QUERIES]


# --- the round trip --------------------------------------------------------------------------------


def test_vault_to_postgres_and_back(source: Path, pg_url: str, tmp_path: Path) -> None:
    before = file_digest(source / "vault.db")
    src = vault_store.unlock(source, PASSPHRASE, read_only=True)
    pg = open_pg(pg_url)
    try:
        t0 = time.perf_counter()
        last = run(src, pg)
        seconds = time.perf_counter() - t0
        v = last.verification
        assert v.ok, v.problems
        assert last.done and not last.cancelled
        assert last.documents_copied == len(src.documents()) == len(pg.documents())
        for name in ("collections", "documents", "chunks", "vectors", "originals", "conversations",
                     "messages", "tokens", "settings", "audit"):
            assert v.counts[name]["matched"] == v.counts[name]["source"] > 0, name
        assert v.vector_tolerance == HALFVEC_TOLERANCE and 0 < v.max_vector_difference <= 2**-12
        assert last.settings_copied == ["chat_model", "embedder", "num_ctx"]
        assert last.identity == "copied" and pg.server_identity() == src.server_identity()
        assert pg.get_setting("storage.kdf")["kdf"]["salt"], "the target keeps its own key"
        # Search gives the same hits on both backends.
        assert hits(pg, "vector") == hits(src, "vector")
        # Rank fusion gives the same order; the default fuses the scores, and the two engines'
        # BM25 scores differ slightly (see keyword below), so near-ties may swap: same passages.
        assert hits(pg, "hybrid", fusion="rrf") == hits(src, "hybrid", fusion="rrf")
        assert [set(h) for h in hits(pg, "hybrid")] == [set(h) for h in hits(src, "hybrid")]
        # Keyword search finds the same passages; the two engines' BM25 (FTS5 and ours over
        # tsvector) may order close scores differently.
        assert [set(h) for h in hits(pg, "keyword")] == [set(h) for h in hits(src, "keyword")]
        # Citations point at the same passages in the target.
        chat = next(c for c in pg.conversations() if c.title == "Tables")
        cited = pg.messages(chat.id)[1].citations
        assert [pg.chunks([c["chunk_id"]])[0].text for c in cited] == [c["text"] for c in cited]
        one = matching_token(pg.tokens(), hashlib.sha256(b"secret one").hexdigest())
        assert one is not None and one.collections == ("default",)
        assert [t.name for t in pg.tokens(include_revoked=True)] == ["laptop", "old"]
        print(f"vault -> postgres: {len(src.documents())} documents in {seconds:.2f} s")

        # ... and back, as an export to a new vault.
        back_home = tmp_path / "export"
        back = vault_store.create(back_home, TARGET_PASSPHRASE, kdf=fast_kdf())
        pg_ro = open_pg(pg_url, read_only=True, create=False)
        try:
            home_again = run(pg_ro, back)
            assert home_again.verification.ok, home_again.verification.problems
            assert home_again.verification.vector_tolerance == 0  # halfvec -> float32 is exact
            # The export equals the original vault: same checksums over every document,
            # original and conversation (ids differ; times, texts and positions do not).
            direct = run(src, back)
            assert direct.documents_copied == 0 and direct.conversations_copied == 0
            assert direct.verification.checksums == v.checksums == home_again.verification.checksums
            for doc in src.documents():
                again = back.document_by_path(back.collection("default").id, doc.path)
                assert again.added_at == doc.added_at and again.mtime == doc.mtime
                assert back.original(again.id) == src.original(doc.id)
                mine, theirs = src.document_vectors(doc.id), back.document_vectors(again.id)
                if mine is not None:
                    assert np.abs(mine - theirs).max() <= 2**-12  # once through halfvec
        finally:
            pg_ro.close()
            back.close()
    finally:
        pg.close()
        src.close()
    assert file_digest(source / "vault.db") == before, "the source was not touched"


def test_a_second_run_copies_nothing(source: Path, pg_url: str) -> None:
    with vault_store.unlock(source, PASSPHRASE, read_only=True) as src:
        pg = open_pg(pg_url)
        try:
            first = run(src, pg)
            counts = {t: pg_count(pg_url, t) for t in ("documents", "chunks", "chunk_vectors",
                                                       "originals", "conversations", "messages",
                                                       "api_tokens")}
            again = run(src, pg)
        finally:
            pg.close()
    assert again.verification.ok and again.verification.checksums == first.verification.checksums
    assert again.documents_copied == 0 and again.documents_skipped == first.documents_copied
    assert (again.conversations_copied, again.tokens_copied, again.audit_copied) == (0, 0, 0)
    assert again.audit_skipped == first.audit_copied + first.audit_skipped
    assert counts == {t: pg_count(pg_url, t) for t in counts}


def test_read_only_sources_refuse_writes(source: Path, pg_url: str) -> None:
    from ragdesk.errors import RagdeskError, StorageError

    with vault_store.unlock(source, PASSPHRASE, read_only=True) as v, \
            vault_store.unlock(source, PASSPHRASE) as owner:  # no lock taken: the owner may write
        with pytest.raises(StorageError, match="read-only"):
            v.set_setting("x", 1)
        assert owner.get_setting("chat_model") == v.get_setting("chat_model")
    open_pg(pg_url).close()
    pg = open_pg(pg_url, read_only=True, create=False)
    try:
        audit = pg_count(pg_url, "audit_log")
        with pytest.raises((RagdeskError, psycopg.Error)):
            pg.set_setting("x", 1)
        assert pg_count(pg_url, "audit_log") == audit, "opening read-only writes no audit entry"
    finally:
        pg.close()


# --- the command line ------------------------------------------------------------------------------


def test_cli_migrates_and_exports_with_json_summary(source: Path, pg_url: str, tmp_path: Path) -> None:
    open_pg(pg_url, passphrase=TARGET_PASSPHRASE).close()  # the server, made with a cheap KDF
    done = run_cli("migrate", "--from", str(source), "--to", pg_url, "--json", env=env())
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["verified"] and summary["copied"]["documents"] == len(FILES) + 1
    assert "password" not in summary["target"] and summary["target"].startswith("postgresql://")
    counts = summary["verification"]["counts"]
    assert counts["documents"]["matched"] == counts["documents"]["source"] == len(FILES) + 1
    # Export: PostgreSQL -> a new vault, passphrases swapped (the target file names one).
    secret = tmp_path / "vault-passphrase"
    secret.write_text(PASSPHRASE + "\n")
    export = tmp_path / "export"
    vault_store.create(export, PASSPHRASE, kdf=fast_kdf()).close()
    back = run_cli("migrate", "--from", pg_url, "--to", str(export),
                   "--target-passphrase-file", str(secret),
                   env=env(RAGDESK_PASSPHRASE=TARGET_PASSPHRASE))
    assert back.returncode == 0, back.stderr
    assert "every item matches" in back.stdout and "vectors equal exactly" in back.stdout
    digests = {line.split()[1]: line.split()[2] for line in back.stdout.splitlines()
               if line.strip().startswith("sha256")}
    assert digests["documents"] == summary["verification"]["checksums"]["documents"]
    assert digests["originals"] == summary["verification"]["checksums"]["originals"]


def _start(source: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ragdesk", "migrate", "--from", str(source), "--to", url, "--json"],
        cwd=REPO, env={**os.environ, **env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)


def _wait_for_documents(url: str, proc: subprocess.Popen[str], at_least: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            n = pg_count(url, "documents")
        except psycopg.Error:  # the schema is being made
            n = 0
        if n >= at_least:
            return n
        time.sleep(0.01)
    stderr = proc.stderr.read() if proc.stderr else ""
    raise AssertionError(f"the migration did not get going: {proc.poll()} {stderr}")


@pytest.fixture
def big_source(tmp_path: Path) -> Iterator[Path]:
    """A vault with 300 small documents, so that a migration takes long enough to interrupt."""
    home = tmp_path / "big"
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(300):
        (folder / f"note-{i:03d}.md").write_text(f"# Note {i}\n\nThe walrus number {i} eats clams.\n")
    with vault_store.create(home, PASSPHRASE, kdf=fast_kdf()) as v:
        list(Indexer(v, HashEmbedder(), IndexOptions(workers=0)).run([folder]))
        conv = v.create_conversation("Walruses")
        v.add_message(conv.id, "user", "How many walruses?")
    yield home


def test_interrupted_twice_then_finished_without_duplicates(big_source: Path, pg_url: str) -> None:
    open_pg(pg_url, passphrase=TARGET_PASSPHRASE).close()
    # Ctrl+C: stops between two documents, says so, exit 130.
    proc = _start(big_source, pg_url)
    _wait_for_documents(pg_url, proc, 5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    after_int = pg_count(pg_url, "documents")
    assert 5 <= after_int < 300
    # SIGKILL: no chance to clean up; each document is in or out as a whole.
    proc = _start(big_source, pg_url)
    _wait_for_documents(pg_url, proc, after_int + 5)
    proc.kill()
    proc.communicate(timeout=30)
    killed_at = pg_count(pg_url, "documents")
    assert after_int < killed_at < 300, "killed mid-way"
    with psycopg.connect(pg_url) as conn:  # no half-written document
        bad = conn.execute("SELECT count(*) FROM documents d WHERE chunk_count !="
                           " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)").fetchone()[0]
        assert bad == 0
    # The third run finishes: everything once, verified.
    done = run_cli("migrate", "--from", str(big_source), "--to", pg_url, "--json", env=env())
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["verified"]
    assert summary["skipped"]["documents"] == killed_at
    assert summary["copied"]["documents"] == 300 - killed_at
    assert pg_count(pg_url, "documents") == 300 and pg_count(pg_url, "conversations") == 1
    assert pg_count(pg_url, "chunks") == pg_count(pg_url, "chunk_vectors") == \
        summary["verification"]["counts"]["chunks"]["source"]
    with psycopg.connect(pg_url) as conn:
        dup = conn.execute("SELECT count(*) FROM (SELECT at, event, detail FROM audit_log"
                           " WHERE event != 'store opened' GROUP BY 1, 2, 3"
                           " HAVING count(*) > 1) d").fetchone()[0]
    assert dup == 0, "no audit entry copied twice"


# --- bad input -------------------------------------------------------------------------------------


def test_same_source_and_target_is_refused(source: Path) -> None:
    done = run_cli("migrate", "--from", str(source), "--to", str(source / ".." / source.name),
                   env=env())
    assert done.returncode == 1 and "the source and the target are the same" in done.stderr


def test_wrong_source_passphrase_touches_nothing(source: Path, tmp_path: Path) -> None:
    before = file_digest(source / "vault.db")
    done = run_cli("migrate", "--from", str(source), "--to", str(tmp_path / "new"),
                   env=env(RAGDESK_PASSPHRASE="not it"))
    assert done.returncode == 1
    assert f"the source ({source}): wrong passphrase" in done.stderr
    assert not (tmp_path / "new").exists(), "the target is not made when the source fails"
    assert file_digest(source / "vault.db") == before


def test_wrong_target_passphrase(source: Path, pg_url: str) -> None:
    open_pg(pg_url, passphrase=TARGET_PASSPHRASE).close()
    done = run_cli("migrate", "--from", str(source), "--to", pg_url,
                   env=env(RAGDESK_TARGET_PASSPHRASE="not it"))
    assert done.returncode == 1 and "the target (postgresql://" in done.stderr
    assert "wrong passphrase" in done.stderr
    assert pg_count(pg_url, "documents") == 0


def test_no_target_passphrase_is_a_usage_error(source: Path, tmp_path: Path) -> None:
    extra = env()
    extra.pop("RAGDESK_TARGET_PASSPHRASE")
    done = run_cli("migrate", "--from", str(source), "--to", str(tmp_path / "t"),
                   env={k: v for k, v in {**os.environ, **extra}.items()
                        if k != "RAGDESK_TARGET_PASSPHRASE"})
    assert done.returncode == 2 and "RAGDESK_TARGET_PASSPHRASE" in done.stderr


def test_unreachable_database(source: Path, tmp_path: Path) -> None:
    before = file_digest(source / "vault.db")
    url = f"postgresql://nobody@/ragdesk?host={tmp_path}&connect_timeout=2"
    done = run_cli("migrate", "--from", str(source), "--to", url, env=env())
    assert done.returncode == 1
    assert "the target (postgresql://nobody@/ragdesk): cannot connect to the database" in done.stderr
    assert file_digest(source / "vault.db") == before


def test_other_vector_space_in_target_is_refused(source: Path, pg_url: str) -> None:
    with open_pg(pg_url, passphrase=TARGET_PASSPHRASE) as pg:
        pg.set_vector_space(VectorSpace("builtin:all-MiniLM-L6-v2", 384))
    done = run_cli("migrate", "--from", str(source), "--to", pg_url, env=env())
    assert done.returncode == 1
    assert "the target's vectors were made by builtin:all-MiniLM-L6-v2 (384 dimensions)" in done.stderr
    assert "Nothing was copied" in done.stderr
    assert pg_count(pg_url, "documents") == 0 and pg_count(pg_url, "settings") == 1


def test_target_with_different_data(source: Path, pg_url: str) -> None:
    """Merge by key: the target's own documents stay; the same path with other content is
    refused before anything is copied."""
    with vault_store.unlock(source, PASSPHRASE, read_only=True) as src:
        some = src.documents()[0]
        with open_pg(pg_url, passphrase=TARGET_PASSPHRASE) as pg:
            pg.set_vector_space(src.vector_space())
            coll = pg.collection("default")
            own = pg.put_document(DocumentInfo(coll.id, "/elsewhere/own.txt", "Own", "txt", 3, 1.0,
                                               "own-hash"), [ChunkDraft("own text", 1, 1, 0, 8)],
                                  np.ones((1, 64), np.float32) / 8.0, b"own")
            clash = pg.put_document(DocumentInfo(coll.id, some.path, "Clash", "txt", 3, 1.0,
                                                 "other-hash"), [], None, None)
            with pytest.raises(TransferConflict, match="different content"):
                run(src, pg)
            assert len(pg.documents()) == 2 and pg.settings() == {}
            pg.remove_document(clash.id)
            merged = run(src, pg)
            assert merged.verification.ok, merged.verification.problems
            assert pg.document(own.id) is not None and len(pg.documents()) == len(src.documents()) + 1
            assert merged.verification.counts["documents"]["target"] == len(src.documents()) + 1
            # A token clash is refused too.
            pg.import_token(ApiToken(0, "intruder", "f" * 64, None, False, 1.0))
    with vault_store.unlock(source, PASSPHRASE) as owner:
        owner.create_token("intruder", "e" * 64)
    with vault_store.unlock(source, PASSPHRASE, read_only=True) as src, \
            open_pg(pg_url, passphrase=TARGET_PASSPHRASE) as pg, \
            pytest.raises(TransferConflict, match="active token named 'intruder'"):
        run(src, pg)
