"""An in-memory vector index: the vault's vectors held as one float32 matrix.

Why: sqlite-vec's KNN scan through SQLCipher decrypts and scans every vector page per query; one
BLAS matrix-vector product over the same vectors in RAM is several times faster at 1M vectors,
and it is exact (recall 1.0, no graph or quantisation to tune). The vault stays the record:
this index is loaded from it on first use (vec0.py) and kept in step by the same process's
writes (only one process may open a vault). Past `max_bytes` the index is not built and the
caller falls back to vec0.

Up to EXACT_MAX rows every search is that exact scan. Past it the scan's cost is memory
bandwidth, so a search first scans a sketch (each row projected on the SKETCH_DIMS principal
directions of the vectors, a sixth of the bytes) and then scores its best candidates exactly:
on embedding-like vectors at 1M it finds what the exact scan finds, several times faster
(benchmarks/bench_retrieval_speed.py, RESULTS.md). EXACT_MAX was 262,144 rows; at 100k rows the
exact scan took 12.9 ms of a core per question, the sketch 3.6 ms with recall@100 0.9999 and
recall@10 1.0 against it (100 CISI questions, the built-in embedder, bench_capacity.py's 100k
vault), and on the LAN server that core is shared by every answer (issue 21).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

import numpy as np

log = logging.getLogger("ragdesk.store")

DEFAULT_MAX_BYTES = 4 << 30  # 4 GiB: about 2.4M vectors of 384 dimensions
EXACT_MAX = 1 << 16  # rows searched by an exact scan; a sketch first past this
SKETCH_DIMS = 64
SKETCH_SAMPLE = 20_000  # rows whose covariance gives the sketch's directions
MIN_CANDIDATES = 2048  # rows scored exactly after the sketch, at least (40 per result asked)


class VectorIndex:
    def __init__(self, dimension: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.dimension = dimension
        self.max_bytes = max_bytes
        self._ids = np.zeros(0, dtype=np.int64)
        self._collections = np.zeros(0, dtype=np.int32)
        self._matrix = np.zeros((0, dimension), dtype=np.float32)
        self._size = 0
        self._lock = threading.RLock()
        # Past EXACT_MAX rows: principal directions (dimension x SKETCH_DIMS) and every row
        # projected on them, kept in step with _matrix; the size when the directions were found.
        self._basis: np.ndarray | None = None
        self._sketch = np.zeros((0, 0), dtype=np.float32)
        self._basis_rows = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Memory held (the allocated capacity, not only the used rows)."""
        return self._matrix.nbytes + self._ids.nbytes + self._collections.nbytes + self._sketch.nbytes

    def _sketched(self, count: int) -> bool:
        return count > EXACT_MAX and self.dimension > 2 * SKETCH_DIMS

    def _row_bytes(self, count: int) -> int:
        return self.dimension * 4 + 12 + (SKETCH_DIMS * 4 if self._sketched(count) else 0)

    def fits(self, count: int) -> bool:
        return count * self._row_bytes(count) <= self.max_bytes

    def reserve(self, count: int) -> None:
        """Make room for `count` more rows at once (a bulk load then needs no growing copies)."""
        with self._lock:
            need = self._size + count
            if need > len(self._ids):
                self._resize(need)

    def _reserve(self, extra: int) -> None:
        need = self._size + extra
        if need <= len(self._ids):
            return
        self._resize(max(need, int(len(self._ids) * 1.5), 1024))

    def _resize(self, capacity: int) -> None:
        matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        matrix[: self._size] = self._matrix[: self._size]
        ids = np.zeros(capacity, dtype=np.int64)
        ids[: self._size] = self._ids[: self._size]
        colls = np.zeros(capacity, dtype=np.int32)
        colls[: self._size] = self._collections[: self._size]
        self._matrix, self._ids, self._collections = matrix, ids, colls
        if self._basis is not None:
            sketch = np.zeros((capacity, self._basis.shape[1]), dtype=np.float32)
            sketch[: self._size] = self._sketch[: self._size]
            self._sketch = sketch

    def add(self, ids: Sequence[int], vectors: np.ndarray, collection_id: int | Sequence[int]) -> None:
        """Append rows; chunk ids are new (the store never reuses them)."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        count = len(ids)
        colls = np.broadcast_to(np.asarray(collection_id, dtype=np.int32), (count,))
        with self._lock:
            self._reserve(count)
            end = self._size + count
            self._ids[self._size : end] = np.asarray(ids, dtype=np.int64)
            self._matrix[self._size : end] = vectors
            self._collections[self._size : end] = colls
            if self._basis is not None:
                self._sketch[self._size : end] = vectors @ self._basis
            self._size = end

    def remove(self, ids: Iterable[int]) -> None:
        """Drop rows by moving the last rows into the holes (order does not matter)."""
        gone = np.fromiter(ids, dtype=np.int64)
        if not len(gone):
            return
        with self._lock:
            rows = np.nonzero(np.isin(self._ids[: self._size], gone))[0]
            sketched = self._basis is not None
            for row in rows[::-1]:  # from the end, so a moved row is never one still to remove
                last = self._size - 1
                if row != last:
                    self._ids[row] = self._ids[last]
                    self._matrix[row] = self._matrix[last]
                    self._collections[row] = self._collections[last]
                    if sketched:
                        self._sketch[row] = self._sketch[last]
                self._size -= 1

    def prepare(self) -> None:
        """Find the sketch's directions now if the index is big enough to use them (else the
        first search past EXACT_MAX does it, and waits seconds for it at 1M rows)."""
        with self._lock:
            if self._sketched(self._size) and (self._basis is None or self._size > 2 * self._basis_rows):
                self._make_sketch()

    def _make_sketch(self) -> None:
        n = self._size
        rng = np.random.default_rng(n)
        sample = self._matrix[np.sort(rng.choice(n, min(n, SKETCH_SAMPLE), replace=False))]
        values, vectors = np.linalg.eigh(np.cov(sample.astype(np.float64), rowvar=False))
        basis = np.ascontiguousarray(vectors[:, np.argsort(values)[::-1][:SKETCH_DIMS]], dtype=np.float32)
        sketch = np.zeros((len(self._ids), basis.shape[1]), dtype=np.float32)
        for start in range(0, n, 65536):
            stop = min(n, start + 65536)
            sketch[start:stop] = self._matrix[start:stop] @ basis
        self._basis, self._sketch, self._basis_rows = basis, sketch, n
        log.info("vector sketch: %d rows on %d directions", n, SKETCH_DIMS)

    def search(self, vector: np.ndarray, k: int,
               collection_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Top-k by cosine distance (vectors are unit length): (chunk id, distance). Exact up to
        EXACT_MAX rows; past it, exact scores of the sketch's best candidates."""
        with self._lock:
            n = self._size
            if n == 0 or k <= 0:
                return []
            q = np.asarray(vector, dtype=np.float32).reshape(self.dimension)
            allowed = None
            if collection_ids is not None:
                allowed = np.isin(self._collections[:n], np.asarray(collection_ids, dtype=np.int32))
            want = max(MIN_CANDIDATES, 40 * k)
            if self._sketched(n) and n > want and (allowed is None or int(allowed.sum()) > want):
                self.prepare()
                assert self._basis is not None
                rough = self._sketch[:n] @ (q @ self._basis)
                if allowed is not None:
                    rough = np.where(allowed, rough, -np.inf)
                rows = np.argpartition(-rough, want - 1)[:want]
                rows = rows[np.isfinite(rough[rows])]
                sims = self._matrix[rows] @ q
            else:
                rows = None
                sims = self._matrix[:n] @ q
                if allowed is not None:
                    sims = np.where(allowed, sims, -np.inf)
            k = min(k, len(sims))
            if k == 0:
                return []
            top = np.argpartition(-sims, k - 1)[:k] if k < len(sims) else np.arange(len(sims))
            top = top[np.argsort(-sims[top], kind="stable")]
            ids = self._ids[top if rows is None else rows[top]]
            return [(int(i), float(1.0 - s)) for i, s in zip(ids, sims[top], strict=True) if np.isfinite(s)]
