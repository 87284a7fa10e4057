"""PostgreSQL keyword search at scale (issue 9): BM25's statistics kept at write time by m003's
triggers (right across every way chunks change, backfilled by the migration) and the vault's
keyword budget, so that a common word neither floods the results nor makes a query cost the
whole index."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import numpy as np
import psycopg
import pytest

from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store import postgres
from ragdesk.core.store.keyword import query_terms
from ragdesk.core.store.postgres import schema
from tests.store.conftest import open_pg

DIM = 4

# The ranking before m003 (with FTS5's idf since), kept as the reference: every statistic counted
# afresh per query from the tsvectors, every candidate's tsvector unnested.
REFERENCE_BM25 = f"""
WITH lex AS MATERIALIZED (SELECT DISTINCT lexeme
   FROM unnest(to_tsvector('{postgres.TS_CONFIG}'::regconfig, %s))),
 q AS MATERIALIZED (SELECT string_agg(quote_literal(lexeme), ' | ')::tsquery AS q FROM lex),
 cand AS (SELECT c.id, c.tsv FROM chunks c, q WHERE c.tsv @@ q.q),
 stats AS MATERIALIZED (SELECT count(*)::float8 AS n, coalesce(avg(length(tsv)), 1)::float8 AS avgdl
   FROM chunks),
 df AS MATERIALIZED (SELECT lexeme,
   (SELECT count(*) FROM chunks c WHERE c.tsv @@ quote_literal(lexeme)::tsquery)::float8 AS df FROM lex)
SELECT cand.id, sum(greatest(ln((stats.n - df.df + 0.5) / (df.df + 0.5)), 1e-6) * (u.tf * 2.2)
 / (u.tf + 1.2 * (0.25 + 0.75 * length(cand.tsv) / stats.avgdl))) AS score
FROM cand CROSS JOIN LATERAL (SELECT lexeme, coalesce(array_length(positions, 1), 1) AS tf
   FROM unnest(cand.tsv)) u
JOIN df ON df.lexeme = u.lexeme CROSS JOIN stats GROUP BY cand.id ORDER BY score DESC, cand.id
"""


def put(store: Any, path: str, texts: list[str], collection: str = "default",
        headings: list[str] | None = None) -> Any:
    coll = store.collection(collection)
    if store.vector_space() is None:
        store.set_vector_space(VectorSpace("test:ones", DIM))
    body = "\n".join(texts)
    info = DocumentInfo(coll.id, path, path, "txt", len(body), 1.0,
                        hashlib.sha256(body.encode()).hexdigest(), pages=1)
    drafts = [ChunkDraft(t, 1, 1, 0, len(t), (headings or [""] * len(texts))[i])
              for i, t in enumerate(texts)]
    vectors = np.full((len(texts), DIM), 0.5, dtype=np.float32)
    return store.put_document(info, drafts, vectors, None)


def kept(url: str) -> tuple[tuple[int, int], dict[str, int]]:
    with psycopg.connect(url) as conn:
        stats = conn.execute("SELECT chunks, lexemes FROM keyword_stats").fetchone()
        words = dict(conn.execute("SELECT lexeme, chunks FROM keyword_lexemes").fetchall())
    return (int(stats[0]), int(stats[1])), {w: int(n) for w, n in words.items()}


def recounted(url: str) -> tuple[tuple[int, int], dict[str, int]]:
    with psycopg.connect(url) as conn:
        stats = conn.execute("SELECT count(*), coalesce(sum(length(tsv)), 0) FROM chunks").fetchone()
        words = dict(conn.execute(
            "SELECT u.lexeme, count(*) FROM chunks c, unnest(c.tsv) u GROUP BY u.lexeme").fetchall())
    return (int(stats[0]), int(stats[1])), {w: int(n) for w, n in words.items()}


def assert_counts_right(store: Any) -> None:
    assert kept(store.url) == recounted(store.url)
    assert store.status().chunks == recounted(store.url)[0][0]


def reference(url: str, query: str) -> list[tuple[int, float]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(REFERENCE_BM25, (" ".join(query_terms(query)),)).fetchall()
    return [(r[0], float(r[1])) for r in rows]


def same_ranking(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> bool:
    """The same chunks, scores and order (sums in another order differ in the last bits: chunks
    whose scores are that close may swap)."""
    def close(x: float, y: float) -> bool:
        return abs(x - y) <= 1e-9 * max(1.0, abs(y))

    return (len(got) == len(want) and dict(got).keys() == dict(want).keys()
            and all(close(score, dict(want)[c]) for c, score in got)
            and all(a[0] == b[0] or close(a[1], b[1]) for a, b in zip(got, want, strict=True)))


def test_counts_are_kept_across_put_replace_remove_and_collections(pg_store: Any) -> None:
    store = pg_store
    assert kept(store.url) == ((0, 0), {})
    a = put(store, "/a.txt", ["the walrus eats clams", "the walrus sleeps", "clams clams clams"])
    put(store, "/b.txt", ["a quagga and a zebra"], collection="zoo",
        headings=["Zebra facts"])
    assert_counts_right(store)
    assert kept(store.url)[1]["walrus"] == 2 and kept(store.url)[1]["clam"] == 2
    put(store, "/a.txt", ["the walrus is gone"])  # replaced: its old chunks leave the counts
    assert_counts_right(store)
    assert kept(store.url)[1]["walrus"] == 1 and "clam" not in kept(store.url)[1]
    put(store, "/c.txt", [])  # a document without chunks (a failed file) changes nothing
    put(store, "/a.txt", [])
    assert_counts_right(store)
    assert "walrus" not in kept(store.url)[1], "a lexeme in no chunk has no row"
    store.remove_document(store.document_by_path(store.collection("default").id, "/a.txt").id)
    assert store.document(a.id) is None
    put(store, "/d.txt", ["zebra crossing", "zebra zebra"])
    assert_counts_right(store)
    assert kept(store.url)[1]["zebra"] == 3
    with psycopg.connect(store.url) as conn:  # a collection's documents go by cascade
        conn.execute("DELETE FROM collections WHERE name = 'zoo'")
    assert_counts_right(store)
    assert kept(store.url)[1]["zebra"] == 2
    with psycopg.connect(store.url) as conn:  # RagDesk never updates chunks; if anyone does
        conn.execute("UPDATE chunks SET text = 'a new text entirely' WHERE text = 'zebra zebra'")
    assert_counts_right(store)
    with psycopg.connect(store.url) as conn:
        conn.execute("TRUNCATE chunks CASCADE")
    assert kept(store.url) == ((0, 0), {})
    put(store, "/e.txt", ["after the truncate"])
    assert_counts_right(store)


def test_a_failed_write_leaves_the_counts_as_they_were(pg_store: Any) -> None:
    put(pg_store, "/a.txt", ["walrus one", "walrus two"])
    before = kept(pg_store.url)
    coll = pg_store.collection("default")
    info = DocumentInfo(coll.id, "/b.txt", "b", "txt", 1, 1.0, "0" * 64, pages=1)
    with pytest.raises(ValueError, match="dimensions"):  # checked before the transaction
        pg_store.put_document(info, [ChunkDraft("walrus", 1, 1, 0, 6)], np.ones((1, 3), np.float32), None)
    with pytest.raises(psycopg.Error):  # the vectors' insert fails after the chunks' insert
        pg_store.put_document(info, [ChunkDraft("walrus three", 1, 1, 0, 6)],
                              np.full((1, DIM), np.nan, np.float32), None)
    assert kept(pg_store.url) == before
    assert_counts_right(pg_store)


def test_writers_at_once_keep_the_counts_and_never_deadlock(pg_url: str) -> None:
    stores = [open_pg(pg_url) for _ in range(4)]
    stores[0].set_vector_space(VectorSpace("test:ones", DIM))
    errors: list[BaseException] = []
    words = ["walrus", "clams", "zebra", "quagga", "library", "the", "of", "report"]

    def write(n: int) -> None:
        rng = np.random.default_rng(n)
        try:
            for d in range(12):
                texts = [" ".join(rng.choice(words, size=8)) for _ in range(int(rng.integers(1, 6)))]
                put(stores[n], f"/w{n}/{d % 5}.txt", texts)  # replacing as well as adding
                if d % 4 == 3:
                    doc = stores[n].document_by_path(stores[n].collection("default").id, f"/w{n}/0.txt")
                    if doc is not None:
                        stores[n].remove_document(doc.id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert_counts_right(stores[0])
    for s in stores:
        s.close()


def test_migration_backfills_an_existing_database(pg_url: str) -> None:
    # A database written by the release before m003: no statistics, no triggers.
    # Its schema and rows are written with plain SQL: today's store also writes (and audits)
    # what later migrations add.
    before = [name for name, _ in schema.MIGRATIONS].index("m003_keyword_stats")
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at DOUBLE PRECISION NOT NULL)")
        for version, (name, script) in enumerate(schema.MIGRATIONS[:before], start=1):
            assert isinstance(script, str)
            conn.execute(script)
            conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, 0)", (version, name))

        def put_old(path: str, texts: list[str], collection: str) -> int:
            coll = conn.execute("INSERT INTO collections(name, created_at) VALUES (%s, 0)"
                                " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
                                (collection,)).fetchone()[0]
            doc = conn.execute(
                "INSERT INTO documents(collection_id, path, title, format, size, mtime, content_hash,"
                " status, pages, chunk_count, added_at, updated_at)"
                " VALUES (%s, %s, %s, 'txt', 1, 1.0, %s, 'indexed', 1, %s, 0, 0) RETURNING id",
                (coll, path, path, path, len(texts))).fetchone()[0]
            for i, t in enumerate(texts):
                conn.execute("INSERT INTO chunks(document_id, ordinal, text, page_start, page_end,"
                             " char_start, char_end) VALUES (%s, %s, %s, 1, 1, 0, %s)", (doc, i, t, len(t)))
            return int(doc)

        put_old("/a.txt", ["the walrus eats clams", "the walrus sleeps"], "default")
        zoo = put_old("/b.txt", ["a zebra among clams"], "zoo")
        conn.execute("DELETE FROM documents WHERE id = %s", (zoo,))
        put_old("/c.txt", ["clams and mussels", "librarians catalogue libraries"], "default")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('keyword_lexemes')").fetchone()[0] is None
    store = open_pg(pg_url)  # m003 backfills
    assert store.status().schema_version == postgres.SCHEMA_VERSION
    assert_counts_right(store)
    assert kept(pg_url)[0] == (4, recounted(pg_url)[0][1]) and kept(pg_url)[1]["clam"] == 2
    assert same_ranking(store.keyword_search("walrus clams", 10), reference(pg_url, "walrus clams"))
    put(store, "/d.txt", ["walrus again"])  # and the triggers keep them from now on
    assert_counts_right(store)
    store.close()


def test_bm25_from_kept_counts_equals_counting_per_query(pg_store: Any) -> None:
    """Within the budget the ranking is the one computed from scratch before m003: the same
    chunks, order and scores, through stemming, headings, repeated words, removals and
    collection filters."""
    rng = np.random.default_rng(7)
    words = ["library", "libraries", "indexing", "indexed", "retrieval", "café", "naïve", "query",
             "queries", "catalogue", "search", "searching", "2024", "x17", "über", "the", "of", "and",
             "o'brien", "back\\slash", "e_mail"]
    for d in range(6):
        texts = [" ".join(rng.choice(words, size=int(rng.integers(1, 40)))) for _ in range(30)]
        put(pg_store, f"/d{d}.txt", texts, collection="work" if d % 2 else "home",
            headings=[str(rng.choice(words)) if i % 3 else "" for i in range(30)])
    pg_store.remove_document(pg_store.document_by_path(pg_store.collection("work").id, "/d3.txt").id)
    assert pg_store.status().chunks <= pg_store.keyword_budget
    for query in ["library", "libraries indexing", "CAFÉ naïve", "über searching 2024",
                  "the of and", "catalogue x17 retrieval queries", "missing words only",
                  "o'brien back\\slash e_mail", "'\\'"]:
        got = pg_store.keyword_search(query, 1000)
        assert same_ranking(got, reference(pg_store.url, query)), query
        assert same_ranking(pg_store.keyword_search(query, 10), got[:10]), query
    work = pg_store.collection("work").id
    in_work = {c.id for doc in pg_store.documents(work) for c in pg_store.document_chunks(doc.id)}
    got = pg_store.keyword_search("library indexing", 500, [work])
    assert got and same_ranking(got, [h for h in reference(pg_store.url, "library indexing")
                                      if h[0] in in_work])


def test_a_common_word_does_not_flood_the_results(pg_store: Any) -> None:
    """The vault's keyword plan (tests/unit/test_search_at_scale.py), on kept exact counts."""
    texts = [f"the report {i} about zebra" if i % 10 == 0 else f"the report {i} about things"
             for i in range(60)]
    texts[7] = "the quagga and the zebra"
    put(pg_store, "/a.txt", texts)
    ids = [c.id for c in pg_store.document_chunks(pg_store.documents()[0].id)]
    zebra = {ids[i] for i in range(60) if "zebra" in texts[i]}
    pg_store.keyword_budget = 60  # the index fits the budget: BM25 over every word, as always
    assert same_ranking(pg_store.keyword_search("the zebra report", 100),
                        reference(pg_store.url, "the zebra report"))
    assert len(pg_store.keyword_search("the zebra report", 100)) == 60

    pg_store.keyword_budget = 10  # "the" (60 chunks) and "report" (59) are left out, zebra (7) kept
    got = pg_store.keyword_search("the zebra report", 100)
    assert {c for c, _ in got} == zebra and len(got) == 7
    assert pg_store.keyword_search("the zebra report", 3) == got[:3]

    pg_store.keyword_budget = 8  # zebra (7) + quagga (1) fit; "the" does not
    got = pg_store.keyword_search("quagga the zebra", 100)
    assert {c for c, _ in got} == zebra and got[0][0] == ids[7], "both words first"

    pg_store.keyword_budget = 6  # zebra (7) is over the budget; quagga (1) alone is ranked
    assert [c for c, _ in pg_store.keyword_search("quagga the zebra", 100)] == [ids[7]]

    pg_store.keyword_budget = 5  # every word is common: chunks with (up to 3 of) them, unranked
    got = pg_store.keyword_search("the about report", 100)
    assert [c for c, _ in got] == [i for i in ids if i != ids[7]]  # chunk 7 has no report/about
    assert all(score == 0.0 for _, score in got)
    pg_store.keyword_budget = 2  # ... from the newest 16 x 2 chunks only: the scan stays bounded
    assert [c for c, _ in pg_store.keyword_search("the about report", 100)] == ids[-32:]

    assert pg_store.keyword_search("nowhere to be found", 10) == []
    assert pg_store.keyword_search('"; DROP TABLE chunks; -- OR ) NEAR( *', 10) == []


def test_the_plan_reads_kept_counts_not_the_index(pg_store: Any) -> None:
    """A keyword search reads a handful of rows for its statistics: its plan holds no scan of
    every chunk (the old query counted each word's chunks and averaged every tsvector)."""
    put(pg_store, "/a.txt", [f"the report {i} about things" for i in range(50)])
    pg_store.keyword_budget = 10
    statements: list[str] = []
    real_execute = psycopg.Connection.execute

    def spy(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        text = query.as_string(self) if hasattr(query, "as_string") else str(query)
        statements.append(text)
        return real_execute(self, query, params, **kw)

    psycopg.Connection.execute = spy  # type: ignore[method-assign]
    try:
        pg_store.keyword_search("the things report", 10)
    finally:
        psycopg.Connection.execute = real_execute  # type: ignore[method-assign]
    joined = " ".join(statements)
    assert "count(*)" not in joined and "avg(" not in joined
    assert "keyword_stats" in joined and "keyword_lexemes" in joined
