"""Question -> ranked hits: keyword (BM25) and vector (cosine) lists fused by their scores.

Fusion: each list's scores become z-scores (a passage missing from a list takes that list's
lowest), then alpha * vector + (1 - alpha) * keyword; that ranking and plain reciprocal rank
fusion's (k 60, equal weights) are fused again by reciprocal rank, so neither the shape of the
scores nor ranks alone decide. Chosen over the old weighted RRF by the average over the CISI,
CACM and docqa dev sets (benchmarks/bench_fusion.py, RESULTS.md).

Anything a user types is safe here: the store turns the text into a query its engine accepts
(quoted terms for FTS5), the embedder takes any string, and an empty question gives no hits.
Near-identical passages (the same boilerplate in many files, a document indexed twice) are
shown once.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import itertools
import logging
import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ragdesk.core.embedding import Embedder
from ragdesk.core.records import Chunk, Document, Hit
from ragdesk.core.scraps import scrap_kind
from ragdesk.core.store.base import Corpus
from ragdesk.core.store.keyword import query_terms

log = logging.getLogger("ragdesk.retrieval")

KEYWORD, VECTOR, HYBRID = "keyword", "vector", "hybrid"
BLEND, ZSCORE, RRF = "zscore+rrf", "zscore", "rrf"  # SearchOptions.fusion
PLAIN_RRF_K = 60.0  # the usual reciprocal rank constant, used by BLEND
SCRAP_DELAY = 3  # places a table of contents, index or reference list moves down (scraps.py)
MAX_QUERY_CHARS = 4000  # longer input is cut: a question, not a document
_WORD = re.compile(r"\w+", re.UNICODE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class SearchOptions:
    k: int = 10
    mode: str = HYBRID
    candidates: int = 100  # taken from each list before fusion
    # Chosen with benchmarks/bench_fusion.py by the average over CISI, CACM and docqa (the whole
    # grid is in RESULTS.md): the z-score convex combination (the vector list weighing a little
    # more) fused with plain RRF. ZSCORE alone is the runner-up.
    fusion: str = BLEND
    vector_alpha: float = 0.6
    # fusion=RRF, the former default: weighted reciprocal rank fusion tuned on CISI alone
    # (benchmarks/bench_cisi.py); it lost to plain RRF (k 60, equal weights) on CACM and docqa.
    rrf_k: float = 20.0
    vector_weight: float = 2.0
    keyword_weight: float = 1.0
    dedupe_threshold: float = 0.8  # Jaccard similarity of word shingles at which hits are "the same"
    snippet_chars: int = 240


@dataclass(frozen=True)
class Timings:
    embed_ms: float = 0.0
    keyword_ms: float = 0.0
    vector_ms: float = 0.0
    total_ms: float = 0.0


def fuse(lists: Sequence[tuple[float, Sequence[int]]], rrf_k: float) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion: score(id) = sum of weight / (rrf_k + rank), rank from 1."""
    scores: dict[int, float] = {}
    for weight, ids in lists:
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _zscores(scored: Sequence[tuple[int, float]]) -> tuple[dict[int, float], float]:
    """({id: z-score}, the value of an id the list lacks: its lowest z). A list whose scores
    are all equal (one hit, or the unranked keyword fallback) orders nothing: every z is 0."""
    if not scored:
        return {}, 0.0
    values = [s for _, s in scored]
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    if not sd > 1e-12 * max(1.0, abs(mean)):
        return {cid: 0.0 for cid, _ in scored}, 0.0
    z = {cid: (s - mean) / sd for cid, s in scored}
    return z, min(z.values())


def fuse_scores(keyword: Sequence[tuple[int, float]], vector: Sequence[tuple[int, float]],
                vector_alpha: float) -> list[tuple[int, float]]:
    """Convex combination of z-scores: vector_alpha * z(vector) + (1 - vector_alpha) * z(keyword),
    best first, ties by chunk id. Both lists are (chunk id, score) with higher better (a vector
    list as similarity, not distance); a chunk one list lacks takes that list's lowest z."""
    zk, missing_k = _zscores(keyword)
    zv, missing_v = _zscores(vector)
    a = vector_alpha
    scores = {cid: a * zv.get(cid, missing_v) + (1 - a) * zk.get(cid, missing_k)
              for cid in zk.keys() | zv.keys()}
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def blend(zscored: Sequence[tuple[int, float]], keyword: Sequence[tuple[int, float]],
          vector: Sequence[tuple[int, float]]) -> list[tuple[int, float]]:
    """The z-score ranking and plain RRF's (k 60, equal weights) of the same two lists, fused
    by RRF k 60. Reciprocal ranks of two rankings tie often: ties keep the z-score order."""
    plain = fuse([(1.0, [c for c, _ in keyword]), (1.0, [c for c, _ in vector])], PLAIN_RRF_K)
    position = {cid: i for i, (cid, _) in enumerate(zscored)}
    scores = dict(fuse([(1.0, [c for c, _ in zscored]), (1.0, [c for c, _ in plain])], PLAIN_RRF_K))
    return sorted(scores.items(), key=lambda kv: (-kv[1], position.get(kv[0], len(position)), kv[0]))


def snippet(text: str, terms: Sequence[str], width: int) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A window of `text` around the densest run of query terms, with the terms' spans."""
    flat = _SPACE.sub(" ", text).strip()
    spans = [m.span() for m in _terms_pattern(tuple(terms)).finditer(flat)]
    start = 0
    if spans and len(flat) > width:
        best, best_count = spans[0][0], 0
        j = 0
        for i, (s, _) in enumerate(spans):  # spans in order: those from i up to j fit the window
            j = max(j, i)
            while j < len(spans) and spans[j][0] < s + width:
                j += 1
            if j - i > best_count:
                best, best_count = s, j - i
        start = max(0, best - width // 4)
        space = flat.rfind(" ", 0, start)
        start = space + 1 if space != -1 and start - space < 30 else start
    end = min(len(flat), start + width)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > start + width // 2 else end
    piece = flat[start:end]
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    marks = tuple(
        (s - start + len(prefix), e - start + len(prefix)) for s, e in spans if s >= start and e <= end
    )
    return prefix + piece + suffix, marks


@functools.lru_cache(maxsize=256)
def _terms_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern that finds the words (as _WORD cuts them) equal, ignoring case, to one of the
    terms longer than one character: the regex engine scans a passage instead of a Python loop
    over its words (snippets are made for every hit a LAN answer shows, issue 21)."""
    wanted = sorted({t for t in terms if len(t) > 1}, key=len, reverse=True)
    if not wanted:
        return re.compile(r"(?!)")  # finds nothing
    return re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, wanted)) + r")(?!\w)", re.IGNORECASE)


def answering_page(chunk: Chunk, terms: Sequence[str]) -> tuple[int, int, int]:
    """(page, char_start, char_end) a hit on `chunk` cites: for a chunk over a page break, the
    page whose part of the text holds the most of the question's words (each counted once;
    ties: the earlier page), else the page it starts on. The offsets are the stored ones on
    that page where they are known (from char_start on the first page, up to char_end on the
    last), else 0 (the preview then finds the passage by its words)."""
    if not chunk.page_breaks:
        return chunk.page_start, chunk.char_start, chunk.char_end
    wanted = {t for t in terms if len(t) > 2 and t not in _STOPWORDS}
    bounds = [(0, chunk.page_start), *chunk.page_breaks, (len(chunk.text), -1)]
    best, best_found = chunk.page_start, 0
    for (start, page), (end, _) in itertools.pairwise(bounds):
        found = len(wanted & {w.lower() for w in _WORD.findall(chunk.text[start:end])})
        if found > best_found:
            best, best_found = page, found
    if best == chunk.page_start:
        return best, chunk.char_start, chunk.char_end if best == chunk.page_end else 0
    return best, 0, chunk.char_end if best == chunk.page_end else 0


# Words that say nothing about where an answer is (for `answering_page` alone: the search
# itself weighs words by BM25).
_STOPWORDS = frozenset({
    "the", "and", "for", "are", "was", "were", "what", "which", "who", "whom", "whose", "when",
    "where", "why", "how", "this", "that", "these", "those", "with", "from", "into", "does", "did",
    "has", "have", "had", "not", "but", "can", "could", "should", "would", "will", "shall", "may",
    "might", "its", "about", "there", "their", "they", "them", "then", "than", "also", "been",
    "being", "such", "only", "other", "more", "most", "some", "any", "all", "each", "per", "via",
})


@functools.lru_cache(maxsize=4096)
def _shingles(text: str) -> frozenset[tuple[str, ...]]:
    """The word triples of a passage (kept for the passages seen most recently: every search
    asks for those of its candidates)."""
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return frozenset({tuple(words)})
    # The shifted copies are shorter by design: the last triple ends the shingles.
    return frozenset(zip(words, words[1:], words[2:], strict=False))


class Retriever:
    """Hybrid retrieval over a store with an embedder (the same one that made its vectors)."""

    def __init__(
        self, store: Corpus, embedder: Embedder | None, options: SearchOptions | None = None,
        *, dense_on_helper: bool = True,
    ) -> None:
        """`dense_on_helper=False`: a hybrid search embeds the question and searches its vectors
        on the calling thread, after the keyword half, instead of on a helper thread beside it.
        For an embedder that embeds on a thread of its own (the LAN server's QuestionEmbedder,
        which has often embedded the question before its search starts): handing the work over
        and back cost the server's searches more waiting for the interpreter lock than the
        vector search itself (issue 21)."""
        self.store = store
        self.embedder = embedder
        self.options = options or SearchOptions()
        self.dense_on_helper = dense_on_helper
        self.last_timings = Timings()

    def search(
        self,
        query: str,
        k: int | None = None,
        collection_ids: Sequence[int] | None = None,
        document_ids: Sequence[int] | None = None,
        mode: str | None = None,
    ) -> list[Hit]:
        opts = self.options
        k = opts.k if k is None else k
        mode = mode or opts.mode
        query = (query or "")[:MAX_QUERY_CHARS]
        if k <= 0 or not query.strip():
            return []
        t0 = time.perf_counter()
        # Filtering by document narrows after the search: ask for more so k survive.
        n = opts.candidates * (4 if document_ids else 1)
        keyword: list[tuple[int, float]] = []
        vector: list[tuple[int, float]] = []
        t_embed = t_kw = t_vec = 0.0
        dense: cf.Future[tuple[list[tuple[int, float]], float, float]] | None = None
        if mode == HYBRID and self.embedder is not None and self.dense_on_helper:
            # The embedder (onnxruntime, or an HTTP call), numpy and SQLite all release the GIL:
            # the question is embedded and its vectors searched on a helper thread while the
            # keyword index is searched here.
            dense = _helpers().submit(self._dense, query, n, collection_ids)
        if mode in (KEYWORD, HYBRID):
            t = time.perf_counter()
            keyword = self.store.keyword_search(query, n, collection_ids)
            t_kw = time.perf_counter() - t
        if dense is not None:
            vector, t_embed, t_vec = dense.result()
        elif mode in (VECTOR, HYBRID) and self.embedder is not None:
            vector, t_embed, t_vec = self._dense(query, n, collection_ids)
        if mode == KEYWORD:
            ranked = [(cid, score) for cid, score in keyword]
        elif mode == VECTOR:
            ranked = [(cid, 1.0 - dist) for cid, dist in vector]
        elif opts.fusion == RRF:
            ranked = fuse(
                [(opts.keyword_weight, [c for c, _ in keyword]),
                 (opts.vector_weight, [c for c, _ in vector])],
                opts.rrf_k,
            )
        else:
            ranked = fuse_scores(keyword, [(cid, 1.0 - dist) for cid, dist in vector], opts.vector_alpha)
            if opts.fusion == BLEND:
                ranked = blend(ranked, keyword, vector)
        hits = self._hits(ranked, query, k, document_ids)
        self.last_timings = Timings(
            embed_ms=t_embed * 1000, keyword_ms=t_kw * 1000, vector_ms=t_vec * 1000,
            total_ms=(time.perf_counter() - t0) * 1000,
        )
        return hits

    def _dense(self, query: str, n: int, collection_ids: Sequence[int] | None
               ) -> tuple[list[tuple[int, float]], float, float]:
        """The vector hits of the question, with the time to embed it and to search."""
        assert self.embedder is not None
        t0 = time.perf_counter()
        qv = self.embedder.embed_query(query)
        t1 = time.perf_counter()
        vector = self.store.vector_search(qv, n, collection_ids)
        return vector, t1 - t0, time.perf_counter() - t1

    def _hits(self, ranked: list[tuple[int, float]], query: str, k: int,
              document_ids: Sequence[int] | None) -> list[Hit]:
        """The first k distinct hits of `ranked`; a table of contents, index or reference list
        (scraps.scrap_kind) comes SCRAP_DELAY places later than its score would put it, with
        the score of the hit it follows (the scores stay in order)."""
        terms = query_terms(query, limit=None)
        wanted_docs = set(document_ids) if document_ids else None
        hits: list[Hit] = []
        deferred: deque[tuple[int, Hit]] = deque()  # (place it may take, hit)
        kept_shingles: list[frozenset[tuple[str, ...]]] = []
        docs: dict[int, Document] = {}

        def place(hit: Hit) -> None:
            hits.append(replace(hit, score=min(hit.score, hits[-1].score)) if hits else hit)

        # Fetch chunk rows in slices: most searches need only the first few.
        for start in range(0, len(ranked), max(k * 2, 20)):
            window = ranked[start : start + max(k * 2, 20)]
            chunks: dict[int, Chunk] = {c.id: c for c in self.store.chunks([cid for cid, _ in window])}
            # Their documents in one query (one each cost the LAN server's searches a wait for
            # the interpreter lock per document: issue 21).
            docs.update(self.store.documents_by_id(
                [c.document_id for c in chunks.values() if c.document_id not in docs]))
            for cid, score in window:
                chunk = chunks.get(cid)
                if chunk is None or (wanted_docs is not None and chunk.document_id not in wanted_docs):
                    continue
                shingles = _shingles(chunk.text)
                if any(_jaccard(shingles, seen) >= self.options.dedupe_threshold for seen in kept_shingles):
                    continue
                doc = docs.get(chunk.document_id)
                if doc is None:
                    continue
                text_snippet, marks = snippet(chunk.text, terms, self.options.snippet_chars)
                kept_shingles.append(shingles)
                page, char_start, char_end = answering_page(chunk, terms)
                hit = Hit(
                    chunk_id=chunk.id, document_id=doc.id, collection_id=doc.collection_id,
                    path=doc.path, title=doc.title, page=page,
                    char_start=char_start, char_end=char_end, score=float(score),
                    text=chunk.text, heading=chunk.heading, snippet=text_snippet, marks=marks,
                )
                if scrap_kind(chunk.text):
                    deferred.append((len(hits) + SCRAP_DELAY, hit))
                    continue
                while deferred and deferred[0][0] <= len(hits) and len(hits) < k:
                    place(deferred.popleft()[1])
                if len(hits) < k:
                    place(hit)
                if len(hits) >= k:
                    return hits
        while deferred and len(hits) < k:  # nothing else left: the scraps after all
            place(deferred.popleft()[1])
        return hits


_helper_pool: cf.ThreadPoolExecutor | None = None
_helper_guard = threading.Lock()


def _helpers() -> cf.ThreadPoolExecutor:
    """The threads that embed questions and search vectors beside the keyword search: a few,
    kept for the process (a store opens one connection per thread, so threads made per search
    would each open their own)."""
    global _helper_pool
    if _helper_pool is None:
        with _helper_guard:
            if _helper_pool is None:
                _helper_pool = cf.ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                                     thread_name_prefix="ragdesk-dense")
    return _helper_pool


def _jaccard(a: frozenset[tuple[str, ...]], b: frozenset[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)

