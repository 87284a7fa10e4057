"""The shortcuts that keep search fast on big vaults give the same answers as the plain way.

* Vectors are loaded into RAM from vec0's blocks, not row by row through the virtual table.
* Keyword search leaves words that are in too many chunks out of the BM25 ranking.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store.sqlite import keyfile, vec0
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.core.store.sqlite.vectors import VectorIndex
from tests.conftest import PASSPHRASE, fast_kdf

DIM = 8


def put(v: vault_store.Vault, path: str, texts: list[str], collection: str = "default",
        seed: int = 0) -> None:
    coll = v.collection(collection)
    assert coll is not None
    if v.vector_space() is None:
        v.set_vector_space(VectorSpace("test:random", DIM))
    rng = np.random.default_rng(seed)
    vecs = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    body = "\n".join(texts)
    info = DocumentInfo(coll.id, path, path, "txt", len(body), 1.0,
                        hashlib.sha256(body.encode()).hexdigest(), pages=1)
    v.put_document(info, [ChunkDraft(t, 1, 1, 0, len(t)) for t in texts], vecs, None)


def rows_of(index: VectorIndex) -> dict[int, tuple[int, bytes]]:
    n = index.size
    return {
        int(i): (int(c), index._matrix[r].tobytes())
        for r, (i, c) in enumerate(zip(index._ids[:n], index._collections[:n], strict=True))
    }


def test_vectors_load_from_blocks_exactly_as_row_by_row(home: Path) -> None:
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    try:
        v.set_vector_space(VectorSpace("test:random", DIM))
        for d in range(5):  # 2600 rows: three vec0 blocks of 1024
            put(v, f"/d{d}.txt", [f"chunk {d} {i}" for i in range(520)],
                collection="work" if d % 2 else "home", seed=d)
        v.remove_document(v.document_by_path(v.collection("work").id, "/d1.txt").id)
        put(v, "/d2.txt", [f"new {i}" for i in range(30)], collection="home", seed=9)  # replaced

        count = vec0.blocks_count(v.db)
        assert count == v._query("SELECT count(*) FROM chunk_vectors")[0][0] == 520 * 3 + 30
        fast = VectorIndex(DIM)
        assert vec0.read_blocks(v.db, fast, count)
        slow = VectorIndex(DIM)
        vec0.read_rows(v.db, slow)
        assert rows_of(fast) == rows_of(slow)
    finally:
        v.lock()

    again = vault_store.unlock(home, PASSPHRASE)
    try:
        index = again.vector_index()
        assert index is not None and index.size == 520 * 3 + 30
        assert index.nbytes == index.size * (DIM * 4 + 8 + 4)  # reserved exactly, no growth slack
        assert again.db.execute("PRAGMA cache_size").fetchone()[0] == -keyfile.DEFAULT_CACHE_KIB
    finally:
        again.lock()


def test_vectors_too_big_are_searched_on_disk(home: Path) -> None:
    v = vault_store.create(home, PASSPHRASE, kdf=fast_kdf())
    try:
        v.set_vector_space(VectorSpace("test:random", DIM))
        put(v, "/a.txt", [f"chunk {i}" for i in range(50)])
        v.vector_memory_limit = 0
        q = np.ones(DIM, dtype=np.float32) / np.sqrt(DIM)
        hits = v.vector_search(q, 5)
        assert v.vector_index() is None and len(hits) == 5
    finally:
        v.lock()


def exact(v: vault_store.Vault, words: str, k: int) -> list[tuple[int, float]]:
    rows = v._query(
        "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
        " ORDER BY s, rowid LIMIT ?",
        (" OR ".join(f'"{w}"' for w in words.split()), k),
    )
    return [(r[0], -r[1]) for r in rows]


def same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """The same chunks with the same scores (to 1e-9), in the same order but among ties."""
    if len(got) != len(want) or any(abs(a[1] - b[1]) > 1e-9 for a, b in zip(got, want, strict=True)):
        return False
    return dict(got).keys() == dict(want).keys() or all(
        a[0] == b[0] or abs(a[1] - b[1]) <= 1e-9 for a, b in zip(got, want, strict=True))


def test_keyword_search_leaves_common_words_out_only_past_the_budget(vault: vault_store.Vault) -> None:
    texts = [f"the report {i} about zebra" if i % 10 == 0 else f"the report {i} about things"
             for i in range(60)]
    texts[7] = "the quagga and the zebra"
    put(vault, "/a.txt", texts)
    n = 60
    vault.keyword_budget = n  # the vault fits the budget: BM25 over every word, as always
    assert same_ranking(vault.keyword_search("the zebra report", 100), exact(vault, "the zebra report", 100))

    vault.keyword_budget = 40  # "the" (60 chunks) and "report" (59) weigh nothing: left out
    got = vault.keyword_search("the zebra report", 100)
    assert same_ranking(got, exact(vault, "zebra", 100))
    full = exact(vault, "the zebra report", 100)  # ... FTS5 clamps their idf to 1e-6
    assert len(full) == 60 and len(got) == 7
    by_id = dict(full)
    assert all(abs(by_id[c] - score) < 1e-4 for c, score in got)  # same scores, to ~1e-6
    assert {c for c, _ in full[:7]} == {c for c, _ in got}  # (the order of exact ties may differ)

    vault.keyword_budget = 10  # "the" (60 chunks) and "report" (59) are left out, zebra (7) kept
    got = vault.keyword_search("the zebra report", 100)
    assert same_ranking(got, exact(vault, "zebra", 100))
    assert len(got) == 7

    vault.keyword_budget = 8  # zebra (7) + quagga (1) fit; "the" does not
    assert same_ranking(vault.keyword_search("quagga the zebra", 100), exact(vault, "quagga zebra", 100))

    vault.keyword_budget = 5  # every word is common: chunks with (up to 3 of) them, unranked
    got = vault.keyword_search("the about report", 100)
    ids = [cid for cid, _ in got]
    assert len(ids) == 59 and ids == sorted(ids)  # chunk 8 has no "report"/"about"
    assert all(score == 0.0 for _, score in got)
    vault.keyword_budget = 2  # ... from the last 16 x 2 chunks only: the scan stays bounded
    assert [cid for cid, _ in vault.keyword_search("the about report", 100)] == list(range(29, 61))

    assert vault.keyword_search("nowhere to be found", 10) == []
    assert vault.keyword_search('"; DROP TABLE chunks; -- OR ) NEAR( *', 10) == []


def test_fts_rows_counts_the_keyword_index(vault: vault_store.Vault) -> None:
    assert vault._fts_rows() == 0
    put(vault, "/a.txt", [f"chunk {i}" for i in range(300)])
    assert vault._fts_rows() == 300
    vault.remove_document(vault.documents()[0].id)
    assert vault._fts_rows() == 0


def embedding_like(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Gaussian rows with a decaying spectrum and a common offset, L2-normalised (as embeddings)."""
    scale = 1.0 / np.sqrt(np.arange(1, d + 1))
    m = rng.normal(size=(n, d)) * scale + 0.3 * scale[::-1]
    return (m / np.linalg.norm(m, axis=1, keepdims=True)).astype(np.float32)


def test_a_big_index_searches_a_sketch_then_scores_exactly(monkeypatch) -> None:
    from ragdesk.core.store.sqlite import vectors

    monkeypatch.setattr(vectors, "EXACT_MAX", 1000)
    monkeypatch.setattr(vectors, "SKETCH_DIMS", 8)
    monkeypatch.setattr(vectors, "MIN_CANDIDATES", 300)
    rng = np.random.default_rng(3)
    d, n = 32, 6000
    vecs = embedding_like(rng, n, d)
    ids = np.arange(10, 10 + n)
    colls = rng.integers(1, 3, size=n)
    index = VectorIndex(d)
    for start in range(0, n, 1500):
        index.add(ids[start:start + 1500], vecs[start:start + 1500], colls[start:start + 1500])
    removed = set(rng.choice(ids, 300, replace=False).tolist())
    index.remove(removed)
    keep = np.array([i not in removed for i in ids])
    found = total = 0
    for q in embedding_like(rng, 30, d):
        for filt in (None, [2]):
            mask = keep & (np.isin(colls, filt) if filt else True)
            sims = vecs[mask] @ q
            expected = ids[mask][np.argsort(-sims)[:10]].tolist()
            got = index.search(q, 10, filt)
            assert [dist for _, dist in got] == sorted(dist for _, dist in got)
            by_id = dict(zip(ids.tolist(), vecs, strict=True))
            for cid, dist in got:  # the distances are the exact ones
                assert abs(dist - (1 - float(by_id[cid] @ q))) < 1e-5
                assert filt is None or colls[cid - 10] in filt
            found += len(set(expected) & {i for i, _ in got})
            total += 10
    assert index._basis is not None and index.nbytes > index._matrix.nbytes + index._ids.nbytes
    assert found / total >= 0.95
    # rows added after the sketch was made are found, and removed ones are not
    q = embedding_like(rng, 1, d)[0]
    index.add([99_999], q[None, :], 1)
    assert index.search(q, 1)[0][0] == 99_999
    index.remove([99_999])
    assert all(i != 99_999 for i, _ in index.search(q, 10))


def test_word_counts_are_recounted_when_the_index_changes(vault: vault_store.Vault) -> None:
    put(vault, "/a.txt", [f"the report {i}" for i in range(30)] + ["okapi here", "okapi there"])
    vault.keyword_budget = 10
    assert len(vault.keyword_search("okapi report", 100)) == 2  # report (30) is left out
    put(vault, "/b.txt", [f"okapi {i}" for i in range(20)])
    # okapi is now in 22 chunks, over the budget too: both words are required, unranked
    assert vault.keyword_search("okapi report", 100) == []
    assert len(vault.keyword_search("okapi", 100)) == 22


def test_keyword_ranking_is_fts5_bm25_exactly(vault: vault_store.Vault) -> None:
    """BM25 is computed from FTS5's index (fts5vocab + docsize), not by bm25() per row: the same
    chunks, order and scores as FTS5's, through stemming, folded diacritics, headings, deletions,
    replacements and collection filters."""
    rng = np.random.default_rng(7)
    words = ["library", "libraries", "indexing", "indexed", "retrieval", "café", "cafe", "naïve", "naive",
             "query", "queries", "catalogue", "catalog", "search", "searching", "2024", "x17", "über",
             "uber", "the", "of", "and"]

    def texts(n: int) -> list[str]:
        return [" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(n)]

    for d in range(6):
        coll = "work" if d % 2 else "home"
        coll_id = vault.collection(coll).id
        body = texts(70)
        info = DocumentInfo(coll_id, f"/d{d}.txt", f"d{d}", "txt", 1, 1.0, f"{d:064x}", pages=1)
        drafts = [ChunkDraft(t, 1, 1, 0, len(t), heading=str(rng.choice(words)) if i % 3 else "")
                  for i, t in enumerate(body)]
        if vault.vector_space() is None:
            vault.set_vector_space(VectorSpace("test:random", DIM))
        vecs = np.ones((len(body), DIM), dtype=np.float32) / np.sqrt(DIM)
        vault.put_document(info, drafts, vecs, None)
    vault.remove_document(vault.document_by_path(vault.collection("work").id, "/d3.txt").id)
    put(vault, "/d4.txt", texts(40), collection="home", seed=4)  # a document replaced

    for query in ["library", "libraries indexing", "cafe", "CAFÉ naïve", "über searching 2024",
                  "the of and", "catalogue x17 retrieval queries", "missing words only",
                  "library libraries"]:
        got = vault.keyword_search(query, 1000)
        assert same_ranking(got, exact(vault, query.lower(), 1000)), query
        assert same_ranking(vault.keyword_search(query, 10), got[:10]), query
    assert vault.keyword_search("library library LIBRARY", 1000) == vault.keyword_search("library", 1000)

    work = vault.collection("work").id
    got = vault.keyword_search("library indexing", 500, [work])
    in_work = {c.id for doc in vault.documents(work) for c in vault.document_chunks(doc.id)}
    want = [hit for hit in exact(vault, "library indexing", 1000) if hit[0] in in_work]
    assert got and same_ranking(got, want)

    # A word FTS5 reads as a phrase ("x_17" is "x 17") is ranked by FTS5 itself, the same way.
    put(vault, "/p.txt", ["x 17 is here", "17 x is not a phrase"], seed=5)
    got = vault.keyword_search("x_17 library", 50)
    assert same_ranking(got, exact(vault, "x_17 library", 50))
    phrase_doc = vault.document_by_path(vault.collection("default").id, "/p.txt")
    phrase_chunk = vault.document_chunks(phrase_doc.id)[0]
    assert phrase_chunk.id in {c for c, _ in got}
    assert len({c for c, _ in got} & {c.id for c in vault.document_chunks(phrase_chunk.document_id)}) == 1


def test_word_counts_kept_across_indexing_never_hide_a_new_word(vault: vault_store.Vault) -> None:
    put(vault, "/a.txt", [f"the report {i} about things" for i in range(60)])
    vault.keyword_budget = 20  # past the budget: word counts decide which words are ranked
    assert vault.keyword_search("quagga", 10) == []
    assert vault.keyword_search("things report", 10)  # counted: "things" and "report"
    put(vault, "/b.txt", ["a quagga in the report"], seed=1)  # the index grows by under 10%
    got = vault.keyword_search("quagga report", 10)
    assert [c for c, _ in got] == [c.id for c in vault.document_chunks(vault.documents()[-1].id)]


def test_kept_postings_never_outlive_the_index_they_came_from(vault: vault_store.Vault) -> None:
    """Keyword search keeps each word's postings while the index is unchanged (fts.py, for the
    LAN server's speed); a change of any kind must show in the next search, even a document
    replaced by one of the same length (the index's averages record stays equal then), and a
    search inside a write that is then undone must not leave its view behind."""
    put(vault, "/a.txt", ["zebra grazing quietly", "lion hunting fast"])
    for query in ("zebra", "lion", "grazing hunting"):
        assert same_ranking(vault.keyword_search(query, 10), exact(vault, query, 10))
    put(vault, "/a.txt", ["lion grazing quietly", "zebra hunting fast"], seed=1)  # same lengths
    (zebra,) = vault.keyword_search("zebra", 10)
    assert vault.chunks([zebra[0]])[0].text == "zebra hunting fast"
    for query in ("zebra", "lion", "grazing hunting"):
        assert same_ranking(vault.keyword_search(query, 10), exact(vault, query, 10))

    class Undo(Exception):
        pass

    try:
        with vault.batch():
            put(vault, "/b.txt", ["an okapi grazing"], seed=2)
            (okapi,) = vault.keyword_search("okapi grazing", 10)[:1]
            assert vault.chunks([okapi[0]])[0].text == "an okapi grazing"
            raise Undo
    except Undo:
        pass
    assert vault.keyword_search("okapi", 10) == []
    assert same_ranking(vault.keyword_search("grazing", 10), exact(vault, "grazing", 10))
