"""Keyword search in the vault: FTS5 matches ranked by BM25 computed from FTS5's own index.

FTS5's bm25() pays per matching row for a lookup and allocations (each an mlock/munlock pair
under cipher_memory_security). The same scores, to ~1e-15, come much cheaper from FTS5's index:
each word's instances through an fts5vocab table and each chunk's length from its docsize row
(tests/unit/test_search_at_scale.py holds them equal). Which words are looked for and ranked is
`keyword.keyword_plan`, shared with the PostgreSQL store.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import sqlcipher3

from ragdesk.core.store.keyword import (
    BM25_B,
    BM25_K1,
    KEYWORD_BUDGET,
    UNRANKED_WINDOW,
    bm25_average_length,
    bm25_idf,
    keyword_plan,
    query_terms,
)
from ragdesk.core.store.sqlite.connections import Connections
from ragdesk.core.store.sqlite.errors import sorted_errors

_IN_BATCH = 10_000  # ids per "IN (...)" (SQLite allows 32766 parameters)


def _varints(data: bytes) -> list[int]:
    """SQLite varints, as FTS5 writes its averages record and docsize rows."""
    values, value = [], 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            values.append(value)
            value = 0
    return values


def _token_counts(blobs: list[bytes]) -> np.ndarray:
    """Each chunk's length in tokens, all columns together, from its FTS5 docsize row (one
    varint per column)."""
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    lengths = np.zeros(len(blobs))
    if not len(data):
        return lengths
    # Vectorised varint sums: each byte adds its 7 bits shifted by its distance to the last
    # byte of its varint (the first byte below 0x80 from it on).
    ends = np.flatnonzero(data < 0x80)
    index = np.arange(len(data))
    shift = ends[np.minimum(np.searchsorted(ends, index), len(ends) - 1)] - index
    values = (data & 0x7F).astype(np.int64) << (7 * shift)
    sizes = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    present = sizes > 0
    lengths[present] = np.add.reduceat(values, starts[present])
    return lengths


def _match(words: Sequence[str], op: str) -> str:
    """An FTS5 query of the words (`keyword.query_terms`: word characters only) joined by `op`
    ("OR", "AND"), each one quoted, so that no word a user typed reads as FTS5 syntax."""
    return f" {op} ".join(f'"{t}"' for t in words)


_Posting = tuple[np.ndarray, np.ndarray, np.ndarray]  # chunk ids (ascending), tf, token counts


def _posting(rows: list[tuple[int, bytes]]) -> _Posting:
    """One word's posting from its instance rows (chunk id, docsize blob; by chunk id): the
    chunks holding it, how often each does, and each one's length in tokens."""
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    docs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    ids, first, tf = np.unique(docs, return_index=True, return_counts=True)
    return ids, tf, _token_counts([bytes(rows[i][1]) for i in first])


class _Postings:
    """Postings of ranked words, kept for as long as the keyword index is unchanged.

    Why: reading a word's instances and its chunks' lengths from FTS5 was most of a keyword
    search (14 of 33 ms a LAN question spent searching on CACM, issue 21), and the questions
    of a team's users share most of their words. The key is FTS5's averages record (rows,
    tokens) with its structure record, whose write counter moves with every change committed
    to the index (two states with equal averages, e.g. a chunk replaced by one as long, still
    differ there); a search reads both in its own read transaction, so what it keeps belongs
    to the state it read. Bounded: past MAX_ENTRIES chunk entries the cache starts again."""

    MAX_ENTRIES = 1_000_000  # (~24 MB)

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._version = b""
        self._kept: dict[str, _Posting] = {}
        self._entries = 0

    def get(self, version: bytes, terms: Sequence[str]) -> dict[str, _Posting]:
        """The kept postings of `terms` at this index `version` (forgetting older ones)."""
        with self._guard:
            if version != self._version:
                self._version, self._kept, self._entries = version, {}, 0
            return {t: self._kept[t] for t in terms if t in self._kept}

    def put(self, version: bytes, postings: dict[str, _Posting]) -> None:
        """Keep postings read at `version` (nothing if the index has moved on since)."""
        with self._guard:
            if version != self._version:
                return
            for term, posting in postings.items():
                if term not in self._kept:
                    if self._entries + len(posting[0]) > self.MAX_ENTRIES:
                        self._kept, self._entries = {}, 0
                    self._kept[term] = posting
                    self._entries += len(posting[0])


@contextlib.contextmanager
def _read_transaction(db: sqlcipher3.Connection) -> Iterator[None]:
    """One read transaction (one consistent state in WAL mode) unless one is open already."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


class KeywordSearch(Connections):
    """The vault's keyword search (a part of Vault)."""

    keyword_budget = KEYWORD_BUDGET  # keyword.py says why

    def _reset_caches(self) -> None:
        super()._reset_caches()
        # word -> its tokens as FTS5 indexes them (porter stems, folded diacritics)
        self._fts_token_cache: dict[str, tuple[str, ...]] = {}
        # (cap, chunks in the index when counted) -> {word: chunks holding it, counted up to cap}
        self._word_chunks_cache: tuple[tuple[int, int], dict[str, int]] | None = None
        # Each ranked word's postings, kept while the index stays as it was (_Postings says why)
        self._postings = _Postings()

    def keyword_search(
        self, query: str, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        words, ranked = self._keyword_plan(terms)
        if not words:
            return []
        if collection_ids is None:
            source, where, params = "chunks_fts f", "", tuple[int, ...]()
        else:
            marks = ",".join("?" * len(collection_ids))
            source = ("chunks_fts f JOIN chunks c ON c.id = f.rowid"
                      " JOIN documents d ON d.id = c.document_id")
            where, params = f" AND d.collection_id IN ({marks})", tuple(collection_ids)
        if not ranked:
            # Every word is common: chunks holding all of the given words, unranked, from the
            # newest 16 x budget chunks indexed (AND-ing common words over the whole index costs
            # the whole index).
            newest = self._query("SELECT max(id) FROM chunks")[0][0] or 0
            rows = self._query(
                f"SELECT f.rowid FROM {source} WHERE chunks_fts MATCH ?{where} AND f.rowid > ?"
                " ORDER BY f.rowid LIMIT ?",
                (_match(words, "AND"), *params,
                 newest - UNRANKED_WINDOW * self.keyword_budget, k),
            )
            return [(r[0], 0.0) for r in rows]
        scored = self._bm25(words)
        if scored is not None:
            ids, scores = scored
            if collection_ids is not None and len(ids):
                keep = self._in_collections(ids, collection_ids)
                ids, scores = ids[keep], scores[keep]
            order = np.lexsort((ids, -scores))[:k]  # best first; ties by chunk id, as FTS5's
            return [(int(ids[i]), float(scores[i])) for i in order]
        # A word FTS5 reads as a phrase ("e_mail" is "e mail"): FTS5 ranks. Every match is
        # fetched and the best k picked here: SQLite's ORDER BY ... LIMIT sorter allocates for
        # each row (an mlock/munlock pair each with cipher_memory_security).
        rows = self._query(
            f"SELECT f.rowid, bm25(chunks_fts) FROM {source} WHERE chunks_fts MATCH ?{where}",
            (_match(words, "OR"), *params),
        )
        best = sorted(rows, key=lambda r: (r[1], r[0]))[:k]  # bm25(): lower is better
        return [(r[0], -r[1]) for r in best]

    # BM25 as FTS5's bm25() computes it (fts5_aux.c: k1 1.2, b 0.75, every column weight 1,
    # idf floored at 1e-6), from FTS5's own index: each word's instances through an fts5vocab
    # table and each chunk's length from chunks_fts_docsize (see the module's docstring).
    def _bm25(self, words: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(chunk ids, BM25 scores) of the chunks holding any of the words; None when a word
        is more than one token to FTS5 (a phrase, which needs positions)."""
        tokens = self._fts_tokens(words)
        if any(len(t) > 1 for t in tokens):
            return None
        # Each word is a phrase to FTS5, weighed on its own even when two share a stem.
        phrases = [t[0] for t in tokens if t]
        terms = list(dict.fromkeys(phrases))
        db = self.db
        if not getattr(self._local, "fts_vocab", False):
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ragdesk_fts_instances"
                       " USING fts5vocab(main, chunks_fts, instance)")
            self._local.fts_vocab = True
        empty = np.zeros(0, dtype=np.int64), np.zeros(0)
        if not terms:
            return empty
        cacheable = not db.in_transaction  # this thread's own uncommitted writes: read afresh
        with sorted_errors(), _read_transaction(db):
            totals, version = self._index_state()
            postings = self._postings.get(version, terms) if cacheable else {}
            for t in terms:
                if t not in postings:
                    # One row per instance of the word, with its chunk's docsize row (a rowid lookup).
                    postings[t] = _posting(db.execute(
                        "SELECT i.doc, s.sz FROM temp.ragdesk_fts_instances i"
                        " JOIN chunks_fts_docsize s ON s.id = i.doc WHERE i.term = ?", (t,),
                    ).fetchall())
        if cacheable:
            self._postings.put(version, postings)
        found = [postings[t] for t in terms if len(postings[t][0])]
        if not found:
            return empty
        ids, inverse = np.unique(np.concatenate([p[0] for p in found]), return_inverse=True)
        lengths = np.empty(len(ids))
        lengths[inverse] = np.concatenate([p[2] for p in found])
        chunk_count = totals[0] if totals else 0
        average = bm25_average_length(chunk_count, sum(totals[1:]))
        k1, b = BM25_K1, BM25_B
        norm = k1 * (1 - b + b * lengths / average)
        scores = np.zeros(len(ids))
        for term in phrases:
            found_ids, tf, _ = postings[term]
            if not len(found_ids):
                continue
            at = np.searchsorted(ids, found_ids)
            scores[at] += bm25_idf(chunk_count, len(found_ids)) * (tf * (k1 + 1)) / (tf + norm[at])
        return ids, scores

    def _fts_tokens(self, words: list[str]) -> list[tuple[str, ...]]:
        """Each word through the index's own tokenizer (a scratch FTS5 table in memory)."""
        cache = self._fts_token_cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            db = self.db
            if not getattr(self._local, "fts_tokenizer", False):
                db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ragdesk_tokenizer"
                           " USING fts5(t, tokenize='porter unicode61')")
                db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ragdesk_tokenizer_i"
                           " USING fts5vocab(temp, ragdesk_tokenizer, instance)")
                self._local.fts_tokenizer = True
            with sorted_errors():
                db.execute("DELETE FROM temp.ragdesk_tokenizer")
                db.executemany("INSERT INTO temp.ragdesk_tokenizer(rowid, t) VALUES (?, ?)",
                               list(enumerate(missing)))
                rows = db.execute("SELECT doc, term FROM temp.ragdesk_tokenizer_i"
                                  " ORDER BY doc, offset").fetchall()
                db.execute("DELETE FROM temp.ragdesk_tokenizer")
            found: dict[int, list[str]] = {}
            for i, term in rows:
                found.setdefault(i, []).append(term)
            if len(cache) > 100_000:
                cache.clear()
            cache.update((w, tuple(found.get(i, ()))) for i, w in enumerate(missing))
        return [cache[w] for w in words]

    def _in_collections(self, ids: np.ndarray, collection_ids: Sequence[int]) -> np.ndarray:
        """A mask over chunk ids: those whose document is in one of the collections."""
        wanted = {int(c) for c in collection_ids}
        keep: set[int] = set()
        for start in range(0, len(ids), _IN_BATCH):
            batch = [int(i) for i in ids[start:start + _IN_BATCH]]
            marks = ",".join("?" * len(batch))
            rows = self._query(
                "SELECT c.id, d.collection_id FROM chunks c JOIN documents d ON d.id = c.document_id"
                f" WHERE c.id IN ({marks})", batch)
            keep.update(r[0] for r in rows if r[1] in wanted)
        return np.fromiter((int(i) in keep for i in ids), dtype=bool, count=len(ids))

    def _keyword_plan(self, terms: list[str]) -> tuple[list[str], bool]:
        """The words to search for and whether to rank them by BM25 (`keyword.keyword_plan`, the
        same plan as the PostgreSQL store's). Words are counted only up to the budget (or half
        the index) + 1, so the costly words all count the same and the fallback takes the
        longest of them (long words are the rarer ones)."""
        budget = self.keyword_budget
        rows = self._fts_rows()
        if rows <= budget:  # a small vault: every word, as always
            return terms, True
        half = (rows + 1) // 2
        counts = self._word_chunks(terms, min(budget, half) + 1, rows)
        chunks = dict(zip(terms, counts, strict=True))
        return keyword_plan(terms, chunks, rows, budget)

    def _word_chunks(self, terms: list[str], cap: int, rows: int) -> list[int]:
        """How many chunks hold each word, counted up to `cap`. Kept while the index is within
        10% of its size when they were counted, indexing included: they only choose which words
        to rank (the ranking itself counts afresh), and most questions share most of their
        words. A word found in no chunk is counted again next time: it may be in the next
        document indexed."""
        cache = self._word_chunks_cache
        if (cache is None or cache[0][0] != cap or abs(rows - cache[0][1]) > cache[0][1] // 10
                or len(cache[1]) > 50_000):
            cache = ((cap, rows), {})
            self._word_chunks_cache = cache
        known = cache[1]
        missing = [t for t in terms if t not in known]
        if missing:
            counts = self._query(
                "SELECT "
                + ", ".join(
                    f"(SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ?{i}"
                    f" LIMIT {int(cap)}))"
                    for i in range(1, len(missing) + 1)
                ),
                [f'"{t}"' for t in missing],
            )[0]
            known.update((t, c) for t, c in zip(missing, counts, strict=True) if c)  # (a word may come)
        return [known.get(t, 0) for t in terms]

    def _index_state(self) -> tuple[list[int], bytes]:
        """FTS5's averages record (chunks in the keyword index, then each column's tokens), and
        a value that changes with every commit to the index: the averages with the structure
        record, whose write counter moves even when the averages do not (_Postings). One query."""
        stats = dict(self._query("SELECT id, block FROM chunks_fts_data WHERE id IN (1, 10)"))
        averages = bytes(stats.get(1) or b"")
        return _varints(averages), averages + b"/" + bytes(stats.get(10) or b"")

    def _fts_rows(self) -> int:
        totals, _ = self._index_state()
        return totals[0] if totals else 0

