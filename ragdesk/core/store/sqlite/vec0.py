"""The vault's vectors: sqlite-vec's vec0 table, the in-memory index loaded from it, and search.

The vec0 table is the record. For speed, searches use a VectorIndex (vectors.py) held in RAM,
loaded on first use and kept in step by this process's own commits (only one process writes a
vault). A vault whose vectors do not fit the memory limit is searched by vec0's own KNN.

Loading reads vec0's storage directly: sqlite-vec 0.1 keeps a vec0 table's rows in blocks of
`size` slots; `_chunks` holds each block's validity bitmap and rowids (int64),
`_vector_chunks00` its vectors (float32) and `_metadatachunks00` its first metadata column,
collection_id (int64). Reading whole blocks is far faster than selecting through the virtual
table, which looks up and opens a blob for each row. Anything unexpected in that layout and the
vectors are read row by row.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlcipher3

from ragdesk.core.records import VectorSpace
from ragdesk.core.store.sqlite.connections import Connections
from ragdesk.core.store.sqlite.errors import sorted_errors
from ragdesk.core.store.sqlite.vectors import DEFAULT_MAX_BYTES, VectorIndex

log = logging.getLogger("ragdesk.store")


# --- reading vec0's storage -------------------------------------------------------------------


def _rows(db: sqlcipher3.Connection, sql: str) -> list[tuple[Any, ...]]:
    with sorted_errors():
        rows: list[tuple[Any, ...]] = db.execute(sql).fetchall()
        return rows


def _live_slots(validity: bytes, size: int) -> np.ndarray:
    """Which of a block's `size` slots hold a row, from its validity bitmap."""
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
    live: np.ndarray = bits[:size] == 1
    return live


def blocks_count(db: sqlcipher3.Connection) -> int | None:
    """The vectors stored, counted from vec0's blocks; None if the layout is not known."""
    try:
        info = dict(_rows(db, "SELECT key, value FROM chunk_vectors_info"))
        if (info.get("CREATE_VERSION_MAJOR"), info.get("CREATE_VERSION_MINOR")) != (0, 1):
            return None
        count = sum(
            int(_live_slots(validity, size).sum())
            for size, validity in _rows(db, "SELECT size, validity FROM chunk_vectors_chunks")
        )
        if count != _rows(db, "SELECT count(*) FROM chunk_vectors_rowids")[0][0]:
            return None
    except sqlcipher3.OperationalError as exc:  # no such table or column: another layout
        log.info("vectors will be read row by row (%s)", exc)
        return None
    return count


def read_blocks(db: sqlcipher3.Connection, index: VectorIndex, count: int) -> bool:
    """Fill `index` from vec0's blocks; False if they do not hold the `count` rows expected."""
    dimension = index.dimension
    try:
        cur = db.execute(
            "SELECT c.size, c.validity, c.rowids, v.vectors, m.data FROM chunk_vectors_chunks c"
            " JOIN chunk_vectors_vector_chunks00 v ON v.rowid = c.chunk_id"
            " JOIN chunk_vectors_metadatachunks00 m ON m.rowid = c.chunk_id"
            " ORDER BY c.chunk_id"
        )
        for size, validity, rowids, vectors, colls in cur:
            expected = (8 * size, 4 * dimension * size, 8 * size, (size + 7) // 8)
            if (len(rowids), len(vectors), len(colls), len(validity)) != expected:
                return False
            live = _live_slots(validity, size)
            index.add(
                np.frombuffer(rowids, dtype=np.int64)[live],
                np.frombuffer(vectors, dtype=np.float32).reshape(size, dimension)[live],
                np.frombuffer(colls, dtype=np.int64)[live],
            )
    except sqlcipher3.OperationalError as exc:
        log.info("vectors will be read row by row (%s)", exc)
        return False
    return index.size == count


def read_rows(db: sqlcipher3.Connection, index: VectorIndex) -> None:
    """Fill `index` through the vec0 table, row by row (slow: a blob lookup per row)."""
    cur = db.execute("SELECT chunk_id, collection_id, embedding FROM chunk_vectors")
    while rows := cur.fetchmany(4096):
        ids = [r[0] for r in rows]
        colls = [r[1] for r in rows]
        matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
        index.add(ids, matrix.reshape(len(rows), index.dimension), colls)


def has_vector_table(db: sqlcipher3.Connection) -> bool:
    return (
        db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chunk_vectors'"
        ).fetchone()
        is not None
    )


# --- the vault's vectors ----------------------------------------------------------------------


@dataclass
class _HeldVectors:
    """The vectors held in RAM: `index` once loaded; state "not loaded", "loaded" or "too big"."""

    index: VectorIndex | None = None
    state: str = "not loaded"
    guard: threading.Lock = field(default_factory=threading.Lock)


class VectorSearch(Connections):
    """The vault's vector space, vectors and vector search (a part of Vault)."""

    # Bytes of vectors held in RAM at most; past it, searches use vec0 on disk.
    vector_memory_limit = DEFAULT_MAX_BYTES

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self._held = _HeldVectors()

    def vector_space(self) -> VectorSpace | None:
        rows = self._query("SELECT embedder, dimension FROM vector_space WHERE id = 1")
        return VectorSpace(rows[0][0], rows[0][1]) if rows else None

    def set_vector_space(self, space: VectorSpace) -> None:
        """Record which embedder makes this vault's vectors. Changing it drops the vectors made
        by the previous one (the caller re-embeds)."""
        if self.vector_space() == space:
            return
        dim = int(space.dimension)
        with self._transaction() as db:
            db.execute("DROP TABLE IF EXISTS chunk_vectors")
            db.execute(
                "CREATE VIRTUAL TABLE chunk_vectors USING vec0("
                f"chunk_id INTEGER PRIMARY KEY, embedding float[{dim}] distance_metric=cosine,"
                " collection_id INTEGER)"
            )
            db.execute(
                "INSERT INTO vector_space(id, embedder, dimension, created_at) VALUES (1, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET embedder = excluded.embedder,"
                " dimension = excluded.dimension, created_at = excluded.created_at",
                (space.embedder, dim, time.time()),
            )
        self._held = _HeldVectors()

    def vector_search(
        self, vector: np.ndarray, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0 or self.vector_space() is None:
            return []
        index = self.vector_index()
        if index is not None:
            return index.search(vector, k, collection_ids)
        blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        if collection_ids is None:
            rows = self._query(
                "SELECT chunk_id, distance FROM chunk_vectors WHERE embedding MATCH ? AND k = ?",
                (blob, k),
            )
        else:
            marks = ",".join("?" * len(collection_ids))
            rows = self._query(
                "SELECT chunk_id, distance FROM chunk_vectors WHERE embedding MATCH ? AND k = ?"
                f" AND collection_id IN ({marks})",
                (blob, k, *collection_ids),
            )
        return [(r[0], r[1]) for r in rows]

    def vector_index(self) -> VectorIndex | None:
        """The vectors held in memory, loaded on first use; None if they exceed the limit."""
        held = self._held
        if held.state == "not loaded":
            with held.guard:
                if held.state == "not loaded":
                    self._load_vectors(held)
        return held.index

    def _load_vectors(self, held: _HeldVectors) -> None:
        space = self.vector_space()
        if space is None:
            return
        db = self.db
        t0 = time.perf_counter()
        # Each vector page is read once here: through a small page cache they neither take the
        # cache's memory nor push the keyword index's pages out of it.
        cache_size = db.execute("PRAGMA cache_size").fetchone()[0]
        db.execute("PRAGMA cache_size = -8192")
        try:
            with sorted_errors():
                blocks = blocks_count(db)
                count = blocks if blocks is not None else self._query(
                    "SELECT count(*) FROM chunk_vectors")[0][0]
                index = VectorIndex(space.dimension, self.vector_memory_limit)
                if not index.fits(count):
                    log.warning("%d vectors exceed the %d MiB memory limit: searching on disk"
                                " instead", count, self.vector_memory_limit >> 20)
                    held.state = "too big"
                    return
                index.reserve(count)
                if blocks is None or not read_blocks(db, index, blocks):
                    index = VectorIndex(space.dimension, self.vector_memory_limit)
                    index.reserve(count)
                    read_rows(db, index)
        finally:
            db.execute(f"PRAGMA cache_size = {int(cache_size)}")
        index.prepare()  # a big index's search sketch, now rather than in the first search
        log.info("loaded %d vectors in %.2f s (%d MiB)", index.size,
                 time.perf_counter() - t0, index.nbytes >> 20)
        held.index, held.state = index, "loaded"

    def _index_vectors(self, removed: list[int], added: list[int], vectors: np.ndarray | None,
                       collection_id: int) -> None:
        """Committed: now the in-memory vector index follows."""
        index = self._held.index
        if index is not None:
            index.remove(removed)
            if vectors is not None:
                index.add(added, vectors, collection_id)

    def document_vectors(self, document_id: int) -> np.ndarray | None:
        """The document's vectors as float32 rows in chunk order, exactly as stored; None if it
        has no chunks or not every chunk has a vector."""
        space = self.vector_space()
        ids = [r[0] for r in self._query(
            "SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal", (document_id,))]
        if space is None or not ids or not has_vector_table(self.db):
            return None
        found: dict[int, bytes] = {}
        for start in range(0, len(ids), 500):  # vec0 answers `chunk_id IN (...)` by lookups
            batch = ids[start:start + 500]
            found.update(self._query(
                "SELECT chunk_id, embedding FROM chunk_vectors WHERE chunk_id IN"
                f" ({','.join('?' * len(batch))})", batch))
        if len(found) != len(ids):
            return None
        matrix = np.frombuffer(b"".join(found[i] for i in ids), dtype=np.float32)
        return matrix.reshape(len(ids), space.dimension).copy()
