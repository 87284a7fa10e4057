"""One behaviour suite for every Store backend: the encrypted SQLite vault and PostgreSQL.

Each test runs twice (`store` is parametrized over "vault" and "postgres") and uses only the
Store protocol, except where it checks that the audit log refuses changes made around it.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from typing import Any

import numpy as np
import pytest

from ragdesk.core.records import ApiToken, ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store.base import matching_token
from ragdesk.errors import RagdeskError
from tests.store.conftest import raw_execute


def unit(rng: np.random.Generator, n: int, dim: int = 4) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add(store: Any, text: str, path: str = "/docs/a.txt", collection: str = "default",
        title: str = "A", seed: int = 0, original: bytes | None = None):  # type: ignore[no-untyped-def]
    coll = store.collection(collection)
    if store.vector_space() is None:
        store.set_vector_space(VectorSpace("test:hash", 4))
    chunks = [ChunkDraft(text, 1, 1, 0, len(text), "Intro"), ChunkDraft(text + " two", 2, 2, 0, 5, "")]
    info = DocumentInfo(coll.id, path, title, "txt", len(text), 1.0,
                        hashlib.sha256(text.encode()).hexdigest(), pages=2)
    return store.put_document(info, chunks, unit(np.random.default_rng(seed), 2),
                              original if original is not None else text.encode())


def active_token(store: Any, token_hash: str) -> ApiToken | None:
    """The active token with this hash, checked as the server checks a presented one."""
    return matching_token(store.tokens(), token_hash)


def test_documents_put_replace_remove(store: Any) -> None:
    first = add(store, "old words here", original=b"\x00old bytes\xff")
    assert store.original(first.id) == b"\x00old bytes\xff"
    second = add(store, "new words there", seed=1)
    assert second.id == first.id and second.added_at == first.added_at  # links stay valid
    assert len(store.documents()) == 1 and store.document(first.id).size == len("new words there")
    assert store.original(first.id) == b"new words there"
    assert store.keyword_search("old", 10) == []
    hits = store.keyword_search("there", 10)
    assert {c.document_id for c in store.chunks([h[0] for h in hits])} == {second.id}
    chunks = store.document_chunks(second.id)
    assert [c.ordinal for c in chunks] == [0, 1] and chunks[0].heading == "Intro"
    assert [c.id for c in store.chunks([chunks[1].id, chunks[0].id])] == [chunks[1].id, chunks[0].id]
    assert store.status().chunks == 2 and store.status().documents == 1
    assert len(store.vector_search(unit(np.random.default_rng(5), 1)[0], 10)) == 2
    store.touch_document(second.id, 42.0)
    assert store.document(second.id).mtime == 42.0
    assert store.document_by_path(second.collection_id, "/docs/a.txt").id == second.id
    store.remove_document(second.id)
    assert store.document(second.id) is None and store.original(second.id) is None
    assert store.keyword_search("there", 10) == [] and store.status().chunks == 0
    assert store.vector_search(unit(np.random.default_rng(5), 1)[0], 10) == []


def test_documents_by_id_gives_those_that_exist(store: Any) -> None:
    a = add(store, "alpha words", path="/docs/a.txt", title="Alpha")
    b = add(store, "beta words", path="/docs/b.txt", title="Beta")
    got = store.documents_by_id([b.id, a.id, b.id, a.id + b.id + 100])
    assert set(got) == {a.id, b.id} and got[a.id].title == "Alpha" and got[b.id].path == "/docs/b.txt"
    assert got[a.id] == store.document(a.id)
    assert store.documents_by_id([]) == {}
    store.remove_document(a.id)
    assert set(store.documents_by_id([a.id, b.id])) == {b.id}


def test_failed_put_leaves_the_previous_version(store: Any) -> None:
    first = add(store, "kept words")
    coll = store.collection("default")
    info = DocumentInfo(coll.id, "/docs/a.txt", "A2", "txt", 3, 2.0, "h2")
    with pytest.raises(ValueError):
        store.put_document(info, [ChunkDraft("x", 1, 1, 0, 1)] * 2,
                           np.zeros((2, 7), dtype=np.float32), b"x")
    assert store.document(first.id).title == "A" and store.keyword_search("kept", 5)


def test_collections_and_folders(store: Any) -> None:
    work = store.collection("work")
    assert store.collection("work").id == work.id and store.collection("nope", create=False) is None
    store.add_folder(work.id, "/b")
    store.add_folder(work.id, "/a")
    store.add_folder(work.id, "/a")
    assert store.collection("work").folders == ("/a", "/b")
    store.collection("archive")
    assert [c.name for c in store.collections()] == ["archive", "work"]
    add(store, "x", path="/w/1", collection="work")
    add(store, "y", path="/r/1", collection="archive")
    assert [d.path for d in store.documents(work.id)] == ["/w/1"]
    assert [d.path for d in store.documents()] == ["/r/1", "/w/1"]


@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "NEAR(a b", "a AND OR NOT", "*", "col:umn", "((()", "🙂 emoji", "", "x" * 10_000,
     "a - b + c ^ d", "'; DROP TABLE chunks; --", "!!&&||<->:*", "\x00nul", "alpha" * 3000],
)
def test_keyword_search_takes_anything_a_user_types(store: Any, query: str) -> None:
    add(store, "alpha beta gamma")
    assert isinstance(store.keyword_search(query, 10), list)
    assert store.status().chunks == 2


def test_keyword_search_ors_the_words_and_ranks_more_matches_first(store: Any) -> None:
    add(store, "the walrus eats clams on the beach", path="/1")
    add(store, "a walrus sleeps", path="/2", seed=1)
    add(store, "clams and mussels", path="/3", seed=2)
    add(store, "nothing relevant at all", path="/4", seed=3)
    hits = store.keyword_search("walrus clams", 10)
    paths = [store.document(c.document_id).path for c in store.chunks([h[0] for h in hits])]
    assert set(paths) == {"/1", "/2", "/3"}, "OR of the words"
    assert paths[0] == "/1", "the chunks holding both words come first"
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(hits)), "best first"
    only = store.keyword_search("walrus clams", 10, [store.collection("default").id])
    assert len(only) == len(hits)
    assert store.keyword_search("walrus clams", 10, [store.collection("other").id]) == []
    assert store.keyword_search("walrus", 1) and len(store.keyword_search("walrus", 1)) == 1


def test_vector_search_filters_by_collection(store: Any) -> None:
    a = add(store, "one", path="/a", collection="work", seed=1)
    b = add(store, "two", path="/b", collection="home", seed=2)
    vec = unit(np.random.default_rng(1), 2)[0]  # a's first chunk
    everything = store.vector_search(vec, 10)
    assert len(everything) == 4 and everything[0][1] == pytest.approx(0, abs=1e-3)
    assert store.chunks([everything[0][0]])[0].document_id == a.id
    assert all(x[1] <= y[1] for x, y in itertools.pairwise(everything)), "nearest first"
    expected = sorted(float(1 - unit(np.random.default_rng(s), 2)[i] @ vec)
                      for s in (1, 2) for i in (0, 1))
    assert [d for _, d in everything] == pytest.approx(expected, abs=2e-3), "cosine distance"
    work = store.collection("work").id
    only = store.vector_search(vec, 10, [work])
    assert {c.document_id for c in store.chunks([h[0] for h in only])} == {a.id}
    assert store.vector_search(vec, 1) == everything[:1]
    store.remove_document(a.id)
    assert {c.document_id for c in store.chunks([h[0] for h in store.vector_search(vec, 10)])} == {b.id}


def test_changing_the_vector_space_drops_old_vectors(store: Any) -> None:
    add(store, "one")
    assert store.vector_space() == VectorSpace("test:hash", 4)
    store.set_vector_space(VectorSpace("other", 8))
    assert store.vector_space() == VectorSpace("other", 8)
    assert store.vector_search(np.ones(8, dtype=np.float32) / np.sqrt(8), 10) == []
    assert store.keyword_search("one", 10), "text stays; the caller re-embeds"


def test_conversations_round_trip(store: Any) -> None:
    conv = store.create_conversation("Budget")
    store.add_message(conv.id, "user", "What is the budget?")
    a = store.add_message(conv.id, "assistant", "", status="streaming")
    store.update_message(a.id, "It is 5 [1].", citations=[{"n": 1, "page": 3}], status="complete",
                         meta={"model": "m"})
    msgs = store.messages(conv.id)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[1].content == "It is 5 [1]." and msgs[1].citations == [{"n": 1, "page": 3}]
    assert msgs[1].status == "complete" and msgs[1].meta == {"model": "m"}
    other = store.create_conversation("Other")
    store.add_message(other.id, "user", "hi")
    assert [c.id for c in store.conversations()] == [other.id, conv.id]
    store.rename_conversation(conv.id, "Money")
    assert store.conversation(conv.id).title == "Money"
    assert store.conversations()[0].id == conv.id, "renaming counts as activity"
    store.delete_conversation(conv.id)
    assert store.conversation(conv.id) is None and store.messages(conv.id) == []


def test_settings_hold_json(store: Any) -> None:
    assert store.get_setting("missing", "dflt") == "dflt"
    store.set_setting("embedder", {"kind": "ollama", "model": "nomic"})
    store.set_setting("num_ctx", 8192)
    store.set_setting("num_ctx", 4096)
    assert store.get_setting("embedder") == {"kind": "ollama", "model": "nomic"}
    assert store.get_setting("num_ctx") == 4096
    store.get_setting("embedder")["model"] = "changed by a caller"  # a copy each time
    assert store.get_setting("embedder")["model"] == "nomic"


def test_a_setting_written_is_read_back_everywhere(store: Any) -> None:
    """Settings read are kept by the vault (for the LAN server's speed): a write on any thread
    shows on every thread, a write undone shows nowhere, a write in a batch shows within it."""
    assert store.get_setting("chat_model") is None
    store.set_setting("chat_model", "llama3.2")
    seen: list[Any] = []
    read = threading.Thread(target=lambda: seen.append(store.get_setting("chat_model")))
    read.start()
    read.join()
    write = threading.Thread(target=store.set_setting, args=("chat_model", "qwen3"))
    write.start()
    write.join()
    assert seen == ["llama3.2"] and store.get_setting("chat_model") == "qwen3"
    with pytest.raises(RuntimeError), store.batch():
        store.set_setting("chat_model", "undone")
        assert store.get_setting("chat_model") == "undone"
        raise RuntimeError("roll back")
    assert store.get_setting("chat_model") == "qwen3"


def test_audit_log_is_append_only(store: Any) -> None:
    store.audit("question asked", chars=12)
    store.audit_many([(1.0, "a", {"n": 1}), (2.0, "b", {"n": 2})])
    events = store.audit_events(3)
    assert [e.event for e in events] == ["b", "a", "question asked"]
    assert events[2].detail == {"chars": 12}
    for sql in ("UPDATE audit_log SET event = 'x'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            raw_execute(store, sql)
    assert store.audit_events(1)[0].event == "b"


def test_tokens_and_server_identity(store: Any) -> None:
    t = store.create_token("alice", "a" * 64, collections=["work"])
    store.create_token("admin", "b" * 64, admin=True)
    with pytest.raises(RagdeskError, match="already exists"):
        store.create_token("alice", "c" * 64)
    assert active_token(store, "a" * 64).name == "alice"
    assert active_token(store, "a" * 64).collections == ("work",)
    assert active_token(store, "b" * 64).admin and active_token(store, "b" * 64).collections is None
    assert active_token(store, "d" * 64) is None
    assert [x.name for x in store.tokens()] == ["admin", "alice"]
    assert store.revoke_token("alice") and not store.revoke_token("alice")
    assert active_token(store, "a" * 64) is None
    assert [x.name for x in store.tokens(include_revoked=True)] == ["admin", "alice"]
    store.create_token("alice", "e" * 64)  # a revoked name may be used again
    assert active_token(store, "e" * 64).id != t.id
    assert store.server_identity() is None
    store.set_server_identity("CERT", "-----BEGIN PRIVATE KEY-----\nsecret")
    store.set_server_identity("CERT2", "-----BEGIN PRIVATE KEY-----\nsecret2")
    assert store.server_identity() == ("CERT2", "-----BEGIN PRIVATE KEY-----\nsecret2")


def test_status_counts(store: Any) -> None:
    add(store, "one", path="/1")
    coll = store.collection("default")
    store.put_document(DocumentInfo(coll.id, "/bad.pdf", "bad", "pdf", 1, 1.0, "h", status="failed",
                                    error="broken"), [], None, None)
    conv = store.create_conversation("c")
    store.add_message(conv.id, "user", "q")
    st = store.status()
    assert (st.collections, st.documents, st.failed_documents, st.chunks) == (1, 1, 1, 2)
    assert (st.conversations, st.messages) == (1, 1)
    assert st.originals_bytes >= 3 and st.database_bytes > 0
    assert st.vector_space == VectorSpace("test:hash", 4) and "salt" not in st.kdf


def test_text_with_nul_characters_is_stored(store: Any) -> None:
    doc = add(store, "before\x00after words")
    text = store.document_chunks(doc.id)[0].text
    assert len(text) == len("before\x00after words") and text.endswith("after words")
    assert store.keyword_search("words", 5)
    conv = store.create_conversation("c")
    msg = store.add_message(conv.id, "user", "a\x00b")
    assert len(store.messages(conv.id)[0].content) == 3 and msg.id


# --- whole-store copies (`ragdesk migrate`) ------------------------------------------------------


def test_settings_list_everything_but_key_material(store: Any) -> None:
    store.set_setting("chat_model", "llama3.2:3b")
    store.set_setting("embedder", {"kind": "builtin"})
    assert store.settings() == {"chat_model": "llama3.2:3b", "embedder": {"kind": "builtin"}}


def test_document_vectors_come_back_in_chunk_order(store: Any) -> None:
    doc = add(store, "vectors in order", seed=3)
    got = store.document_vectors(doc.id)
    expected = unit(np.random.default_rng(3), 2)
    assert got.dtype == np.float32 and got.shape == (2, 4)
    # The vault keeps float32 exactly; PostgreSQL keeps halfvec (11 significant bits).
    tolerance = 0 if hasattr(store, "db") else 1e-3
    assert np.abs(got - expected).max() <= tolerance
    coll = store.collection("default")
    bare = store.put_document(DocumentInfo(coll.id, "/docs/failed.pdf", "F", "pdf", 1, 1.0, "x",
                                           status="failed", error="broken"), [], None, None)
    assert store.document_vectors(bare.id) is None
    no_vectors = store.put_document(DocumentInfo(coll.id, "/docs/nv.txt", "N", "txt", 1, 1.0, "y"),
                                    [ChunkDraft("no vector", 1, 1, 0, 9)], None, None)
    assert store.document_vectors(no_vectors.id) is None


def test_document_times_can_be_set(store: Any) -> None:
    doc = add(store, "old document")
    store.set_document_times(doc.id, 1000.5, 2000.25)
    again = store.document(doc.id)
    assert (again.added_at, again.updated_at) == (1000.5, 2000.25)


def test_import_conversation_keeps_times_and_order(store: Any) -> None:
    from ragdesk.core.records import Conversation, Message

    source = Conversation(0, "Budget questions", 100.0, 300.0)
    messages = [
        Message(0, 0, "user", "What is the budget?", [], "complete", 150.0),
        Message(0, 0, "assistant", "It is 5 [1].", [{"n": 1, "path": "/a.pdf", "page": 2}],
                "stopped", 160.0, {"model": "m"}),
    ]
    made = store.import_conversation(source, messages)
    assert store.conversation(made.id) == Conversation(made.id, "Budget questions", 100.0, 300.0)
    got = store.messages(made.id)
    assert [(m.role, m.content, m.citations, m.status, m.created_at, m.meta) for m in got] == [
        ("user", "What is the budget?", [], "complete", 150.0, {}),
        ("assistant", "It is 5 [1].", [{"n": 1, "path": "/a.pdf", "page": 2}], "stopped", 160.0,
         {"model": "m"}),
    ]


def test_import_token_keeps_hash_scope_and_times(store: Any) -> None:
    from ragdesk.core.records import ApiToken

    revoked = store.import_token(ApiToken(0, "old", "a" * 64, ("default",), False, 10.0, 20.0))
    active = store.import_token(ApiToken(0, "old", "b" * 64, None, True, 30.0))
    assert store.tokens() == [active]
    assert store.tokens(include_revoked=True) == [revoked, active]
    assert active_token(store, "b" * 64) == active and active_token(store, "a" * 64) is None
    with pytest.raises(RagdeskError):
        store.import_token(ApiToken(0, "other", "b" * 64, None, False, 40.0))


def test_a_batch_commits_together_and_each_write_in_it_stays_whole(store: Any) -> None:
    kept = add(store, "stored before the batch", path="/docs/kept.txt")
    coll = store.collection("default")
    probe = unit(np.random.default_rng(3), 1)[0]  # batch.txt's first chunk
    with store.batch():
        first = add(store, "first of the batch", path="/docs/batch.txt", seed=3)
        assert store.document(first.id).title == "A", "the batch reads its own writes"
        bad = DocumentInfo(coll.id, "/docs/bad.txt", "Bad", "txt", 3, 2.0, "h")
        with pytest.raises(ValueError):  # wrong dimension: refused after the document row
            store.put_document(bad, [ChunkDraft("half", 1, 1, 0, 4)] * 2,
                               np.zeros((2, 7), dtype=np.float32), b"x")
        store.audit("inside the batch")
    assert store.document_by_path(coll.id, "/docs/bad.txt") is None, "the failed put left nothing"
    assert store.document(first.id) is not None and store.keyword_search("batch", 5)
    assert store.chunks([store.vector_search(probe, 1)[0][0]])[0].document_id == first.id
    assert store.audit_events(1)[0].event == "inside the batch"

    with pytest.raises(RuntimeError), store.batch():
        gone = add(store, "rolled back with its batch", path="/docs/gone.txt", seed=4)
        store.remove_document(kept.id)
        raise RuntimeError("the indexer stopped")
    assert store.document(gone.id) is None and store.document_by_path(coll.id, "/docs/gone.txt") is None
    assert store.keyword_search("rolled", 5) == []
    assert store.document(kept.id) is not None, "a removal in a failed batch is undone"
    near = store.vector_search(unit(np.random.default_rng(4), 1)[0], 10)
    assert {c.document_id for c in store.chunks([h[0] for h in near])} == {kept.id, first.id}
    assert len(near) == 4, "vectors of the rolled-back document never reach the index"
