"""An exact in-memory vector index: the vault's vectors held as one float32 matrix.

Why: sqlite-vec's KNN scan through SQLCipher takes ~340 ms at 1M vectors of 384 dimensions on a
2-core machine; one BLAS matrix-vector product over the same vectors in RAM takes ~70 ms, and it
is exact (recall 1.0, no graph or quantisation to tune). The vault stays the record: this index
is loaded from it on first use and kept in step by the same process's writes (only one process
may open a vault). Past `max_bytes` the index is not built and the caller falls back to vec0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence

import numpy as np

log = logging.getLogger("ragdesk.store")

DEFAULT_MAX_BYTES = 4 << 30  # 4 GiB: about 2.7M vectors of 384 dimensions


class VectorIndex:
    def __init__(self, dimension: int, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.dimension = dimension
        self.max_bytes = max_bytes
        self._ids = np.zeros(0, dtype=np.int64)
        self._collections = np.zeros(0, dtype=np.int32)
        self._matrix = np.zeros((0, dimension), dtype=np.float32)
        self._size = 0
        self._lock = threading.RLock()

    @property
    def size(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Memory held (the allocated capacity, not only the used rows)."""
        return self._matrix.nbytes + self._ids.nbytes + self._collections.nbytes

    def fits(self, count: int) -> bool:
        return count * (self.dimension * 4 + 12) <= self.max_bytes

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
            self._size = end

    def remove(self, ids: Iterable[int]) -> None:
        """Drop rows by moving the last rows into the holes (order does not matter)."""
        gone = np.fromiter(ids, dtype=np.int64)
        if not len(gone):
            return
        with self._lock:
            rows = np.nonzero(np.isin(self._ids[: self._size], gone))[0]
            for row in rows[::-1]:  # from the end, so a moved row is never one still to remove
                last = self._size - 1
                if row != last:
                    self._ids[row] = self._ids[last]
                    self._matrix[row] = self._matrix[last]
                    self._collections[row] = self._collections[last]
                self._size -= 1

    def search(self, vector: np.ndarray, k: int,
               collection_ids: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """Exact top-k by cosine distance (vectors are unit length): (chunk id, distance)."""
        with self._lock:
            n = self._size
            if n == 0 or k <= 0:
                return []
            q = np.asarray(vector, dtype=np.float32).reshape(self.dimension)
            sims = self._matrix[:n] @ q
            if collection_ids is not None:
                allowed = np.isin(self._collections[:n], np.asarray(collection_ids, dtype=np.int32))
                sims = np.where(allowed, sims, -np.inf)
            k = min(k, n)
            top = np.argpartition(-sims, k - 1)[:k] if k < n else np.arange(n)
            top = top[np.argsort(-sims[top], kind="stable")]
            ids = self._ids[top]
            return [(int(i), float(1.0 - s)) for i, s in zip(ids, sims[top]) if np.isfinite(s)]
