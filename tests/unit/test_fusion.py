"""Hybrid search fuses the keyword and vector lists by their z-scores, blended with plain RRF
(issue 16): a passage both lists rank well comes first, a missing or uninformative list changes
nothing, the scale of BM25 scores does not matter, ties come out in the same order every time,
and the z-scores alone or the former weighted RRF are still there when asked for."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ragdesk.core.records import Chunk, Document
from ragdesk.core.retrieval import (
    HYBRID,
    RRF,
    ZSCORE,
    Retriever,
    SearchOptions,
    blend,
    fuse,
    fuse_scores,
)


def ids(ranked: list[tuple[int, float]]) -> list[int]:
    return [cid for cid, _ in ranked]


def test_a_passage_both_lists_rank_well_beats_one_only_a_single_list_tops() -> None:
    keyword = [(1, 10.0), (2, 5.0), (3, 1.0)]
    vector = [(2, 0.9), (4, 0.8), (5, 0.1)]
    assert ids(fuse_scores(keyword, vector, 0.55))[0] == 2
    assert set(ids(fuse_scores(keyword, vector, 0.55))) == {1, 2, 3, 4, 5}


def test_one_list_empty_keeps_the_other_lists_order() -> None:
    keyword = [(7, 12.0), (3, 8.5), (9, 2.0)]
    assert ids(fuse_scores(keyword, [], 0.55)) == [7, 3, 9]
    vector = [(4, 0.8), (1, 0.7), (8, 0.2)]
    assert ids(fuse_scores([], vector, 0.55)) == [4, 1, 8]
    assert fuse_scores([], [], 0.55) == []


def test_a_list_of_equal_scores_orders_nothing() -> None:
    # The keyword fallback when every word is common scores all its chunks 0.0; a single hit has
    # no spread either: the other list decides, and nothing becomes NaN.
    unranked = [(5, 0.0), (6, 0.0), (7, 0.0)]
    vector = [(7, 0.9), (5, 0.5), (6, 0.1)]
    fused = fuse_scores(unranked, vector, 0.55)
    assert ids(fused) == [7, 5, 6]
    assert all(math.isfinite(s) for _, s in fused)
    single = fuse_scores([(2, 3.7)], [(2, 0.4)], 0.55)
    assert single == [(2, 0.0)]


def test_ties_come_out_by_chunk_id_whatever_the_input_order() -> None:
    keyword = [(30, 1.0), (10, 1.0), (20, 1.0)]
    vector = [(20, 0.5), (30, 0.5), (10, 0.5)]
    assert ids(fuse_scores(keyword, vector, 0.55)) == [10, 20, 30]
    assert fuse_scores(keyword[::-1], vector[::-1], 0.55) == fuse_scores(keyword, vector, 0.55)


def test_the_scale_of_keyword_scores_does_not_change_the_ranking() -> None:
    # BM25 scores run higher on one collection than another; the z-scores do not.
    keyword = [(1, 9.0), (2, 6.0), (3, 4.0), (4, 1.0)]
    vector = [(3, 0.82), (4, 0.80), (5, 0.5), (1, 0.3)]
    scaled = [(cid, s * 37.5) for cid, s in keyword]
    assert ids(fuse_scores(keyword, vector, 0.55)) == ids(fuse_scores(scaled, vector, 0.55))


def test_alpha_moves_the_weight_between_the_lists() -> None:
    keyword = [(1, 9.0), (2, 1.0)]
    vector = [(2, 0.9), (1, 0.1)]
    assert ids(fuse_scores(keyword, vector, 0.2))[0] == 1
    assert ids(fuse_scores(keyword, vector, 0.8))[0] == 2


def test_the_blend_breaks_its_ties_by_the_z_score_order() -> None:
    # Ranks 1 and 2 in one ranking, 2 and 1 in the other: equal reciprocal ranks.
    keyword, vector = [(1, 5.0), (2, 4.0)], [(2, 0.9), (1, 0.8)]
    zscored = [(2, 0.3), (1, -0.3)]
    assert ids(blend(zscored, keyword, vector)) == [2, 1]
    assert ids(blend(zscored[::-1], keyword, vector)) == [1, 2]


class _Store:
    """Two fixed lists and their chunks: just what Retriever reads."""

    def __init__(self, keyword: list[tuple[int, float]], vector: list[tuple[int, float]]) -> None:
        self.keyword, self.vector = keyword, vector

    def keyword_search(self, query: str, k: int, collection_ids: Sequence[int] | None = None
                       ) -> list[tuple[int, float]]:
        return self.keyword[:k]

    def vector_search(self, vector: np.ndarray, k: int, collection_ids: Sequence[int] | None = None
                      ) -> list[tuple[int, float]]:
        return self.vector[:k]

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        return [Chunk(id=c, document_id=c, ordinal=0, text=f"passage number {c} about topic {c * 7}",
                      page_start=1, page_end=1, char_start=0, char_end=30, heading="") for c in chunk_ids]

    def document(self, document_id: int) -> Document:
        return Document(id=document_id, collection_id=1, path=f"/d/{document_id}.txt", title=str(document_id),
                        format="txt", size=1, mtime=0.0, content_hash="", status="ok", error=None,
                        pages=1, chunks=1, added_at=0.0, updated_at=0.0)

    def documents_by_id(self, document_ids: Sequence[int]) -> dict[int, Document]:
        return {i: self.document(i) for i in document_ids}


class _Embedder:
    def embed_query(self, text: str) -> np.ndarray:
        return np.zeros(4, dtype=np.float32)


def test_hybrid_search_blends_z_scores_with_plain_rrf_and_the_others_stay_available() -> None:
    # Keyword: 1 far ahead, then 2, 3 close. Vector (cosine distance): 3 nearest, 2 next, 1 far.
    store = _Store(keyword=[(1, 20.0), (2, 2.1), (3, 2.0)], vector=[(3, 0.10), (2, 0.12), (1, 0.60)])
    zscored = ids(fuse_scores(store.keyword, [(c, 1 - d) for c, d in store.vector], 0.6))
    plain = ids(fuse([(1.0, ids(store.keyword)), (1.0, ids(store.vector))], 60))
    want = ids(fuse([(1.0, zscored), (1.0, plain)], 60))
    hits = Retriever(store, _Embedder()).search("topic", k=3, mode=HYBRID)  # type: ignore[arg-type]
    assert [h.chunk_id for h in hits] == want
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    alone = Retriever(store, _Embedder(), SearchOptions(fusion=ZSCORE))  # type: ignore[arg-type]
    assert [h.chunk_id for h in alone.search("topic", k=3, mode=HYBRID)] == zscored
    old = Retriever(store, _Embedder(), SearchOptions(fusion=RRF))  # type: ignore[arg-type]
    # Weighted RRF (vector weight 2, k 20) reads ranks only: 3 (ranks 3 and 1) wins.
    assert old.search("topic", k=3, mode=HYBRID)[0].chunk_id == 3


def test_the_vector_half_runs_beside_or_after_the_keyword_half_with_the_same_result() -> None:
    """By default the question is embedded on a helper thread while the keyword index is
    searched; the LAN server, whose QuestionEmbedder embeds on a thread of its own, asks for it
    on the calling thread (dense_on_helper=False). Same hits either way."""
    import threading

    seen: list[str] = []

    class Recording(_Embedder):
        def embed_query(self, text: str) -> np.ndarray:
            seen.append(threading.current_thread().name)
            return super().embed_query(text)

    store = _Store(keyword=[(1, 20.0), (2, 2.1), (3, 2.0)], vector=[(3, 0.10), (2, 0.12), (1, 0.60)])
    beside = Retriever(store, Recording()).search("topic", k=3)  # type: ignore[arg-type]
    after = Retriever(store, Recording(), dense_on_helper=False).search("topic", k=3)  # type: ignore[arg-type]
    assert [h.chunk_id for h in beside] == [h.chunk_id for h in after]
    assert seen[0].startswith("ragdesk-dense") and seen[1] == threading.current_thread().name
