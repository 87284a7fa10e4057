"""The in-memory exact vector index against a brute-force reference."""

from __future__ import annotations

import numpy as np

from ragdesk.core.store.sqlite.vectors import VectorIndex


def unit(rng: np.random.Generator, n: int, d: int = 16) -> np.ndarray:
    m = rng.normal(size=(n, d)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_search_matches_brute_force_after_adds_and_removes() -> None:
    rng = np.random.default_rng(7)
    index = VectorIndex(16)
    vecs = unit(rng, 3000)
    ids = np.arange(100, 3100)
    colls = rng.integers(1, 4, size=3000)
    for start in range(0, 3000, 700):  # several adds, crossing capacity growth
        index.add(ids[start:start + 700], vecs[start:start + 700], colls[start:start + 700])
    removed = set(rng.choice(ids, 500, replace=False).tolist())
    index.remove(removed)
    keep = np.array([i not in removed for i in ids])
    q = unit(rng, 1)[0]
    for filt in (None, [2], [1, 3]):
        mask = keep & (np.isin(colls, filt) if filt else True)
        sims = vecs[mask] @ q
        expected = ids[mask][np.argsort(-sims)[:10]].tolist()
        got = index.search(q, 10, filt)
        assert [i for i, _ in got] == expected
        assert abs(got[0][1] - (1 - sims.max())) < 1e-5
    assert index.size == 2500


def test_empty_and_small() -> None:
    index = VectorIndex(4)
    assert index.search(np.ones(4, dtype=np.float32), 5) == []
    index.add([1, 2], np.eye(4, dtype=np.float32)[:2], 1)
    assert [i for i, _ in index.search(np.array([0, 1, 0, 0], dtype=np.float32), 5)] == [2, 1]
    assert index.search(np.ones(4, dtype=np.float32), 5, [9]) == []
    assert not VectorIndex(384, max_bytes=1000).fits(10)
