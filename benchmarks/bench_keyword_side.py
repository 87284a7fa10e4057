"""The keyword side of hybrid search, varied and measured on all three dev sets (issue 16).

    .venv/bin/python benchmarks/bench_keyword_side.py --work DIR   # DIR: bench_quality.py's --work
        [--only "LABEL TEXT|..."] [--mode hybrid|keyword|vector] [--plain-rrf] [--paired]

Candidates: request words and stopwords left out of the keyword query (or of the embedded one),
RM3-style pseudo-relevance feedback (keyword expansion), BM25's k1 and b, per-column weights
(text, heading, `context`), the keyword budget off, proximity of adjacent query words, vector-side
Rocchio feedback, the fusion's vector_alpha and depth (also after the keyword list changes). Each
one is run in process on the vaults bench_quality.py built (cisi/, cacm/, docqa/ under DIR,
opened read-only), through the shipped Retriever (fusion, dedupe, scraps, cited pages) with a
store whose keyword search is computed here: BM25 over FTS5's own index (its fts5vocab instances
and docsize rows, read once), which reproduces the vault's keyword lists exactly for the shipped
settings (checked at start: it prints how many questions' lists differ, words FTS5 reads as
phrases aside). Each question's vector list is fetched once. Scored as bench_quality.py scores:
CISI and CACM nDCG@10 over distinct documents, docqa page MRR@10 (and hit@1).

Prints one Markdown row per candidate: the three figures, their average and each set's change
from the shipped settings, best average first; --plain-rrf adds each set's hybrid − plain RRF over
the candidate's own lists (slow), --paired a table of per-question changes (mean, standard error,
up / down), --mode keyword|vector scores one list alone. About 2 minutes on the 2-core build
machine (RESULTS.md, issue 16).
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_quality as bq

from ragdesk.core.embedding.builtin import BuiltinEmbedder
from ragdesk.core.records import Hit
from ragdesk.core.retrieval import Retriever, SearchOptions, blend, fuse_scores
from ragdesk.core.store.keyword import KEYWORD_BUDGET, bm25_idf, keyword_plan, query_terms
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.core.store.sqlite.fts import _varints

COLUMNS = ("text", "heading", "context")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Lucene's EnglishAnalyzer default stop set.
LUCENE = _words(
    "a an and are as at be but by for if in into is it no not of on or such that the their then"
    " there these they this to was will with")
# NLTK's English stopword list (the contractions' pieces as \w+ splits them).
NLTK = _words("""i me my myself we our ours ourselves you your yours yourself yourselves he him
his himself she her hers herself it its itself they them their theirs themselves what which who
whom this that these those am is are was were be been being have has had having do does did doing
a an the and but if or because as until while of at by for with about against between into through
during before after above below to from up down in out on off over under again further then once
here there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now d ll m o re ve y ain aren couldn didn doesn
hadn hasn haven isn ma mightn mustn needn shan shouldn wasn weren won wouldn""")
# Words of asking for documents rather than of what they are about (the "query stopwords" of
# INQUERY-style topic processing), written down before any run, from no dev question.
REQUEST = _words("""article articles paper papers document documents publication publications
literature report reports study studies interested interest interests want wanted wish like would
need needs please find finding looking look seeking seek search give show tell explain describe
describes described description descriptions discuss discusses discussed discussion discussions
concerning regarding related relating relevant pertaining deal deals dealing dealt mention mentions
mentioned examples example particular particularly especially specific specifically also etc kind
kinds type types various way ways""")


@dataclass(frozen=True)
class Candidate:
    label: str
    stop: frozenset[str] = frozenset()  # words left out of the keyword query
    k1: float = 1.2
    b: float = 0.75
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # text, heading, context
    budget: bool = True  # the keyword budget (keyword.keyword_plan) as shipped
    rm3: tuple[int, int, float] | None = None  # (feedback passages, terms, original weight)
    vector_stop: frozenset[str] = frozenset()  # words left out of what is embedded
    # sequential-dependence-style proximity: each pair of adjacent content words of the question
    # (NLTK's stopwords out) as one more BM25 term, (weight as an exact bigram, weight within
    # WINDOW words in either order)
    proximity: tuple[float, float] | None = None
    # vector-side feedback (Rocchio, as bench_prf.py): (beta, passages m, which passages:
    # "fused" = the top m of the shipped fusion, "vector" = the vector list's top m, "agree" = the
    # first m of the vector list's top 10 that the keyword list's top 10 holds too, none if no
    # passage is in both)
    rocchio: tuple[float, int, str] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # SearchOptions changed


def candidates() -> list[Candidate]:
    out = [Candidate("as shipped (k1 1.2, b 0.75, weights 1/1/1)"),
           Candidate("keyword budget off (every word ranked)", budget=False),
           Candidate("stopwords out: Lucene's 33", stop=LUCENE),
           Candidate("stopwords out: NLTK's 179", stop=NLTK),
           Candidate("request words out", stop=REQUEST),
           Candidate("Lucene's + request words out", stop=LUCENE | REQUEST),
           Candidate("NLTK's + request words out", stop=NLTK | REQUEST)]
    out += [Candidate(f"RM3 m {m} n {n} original {lam}", rm3=(m, n, lam))
            for m, n, lam in [(3, 10, 0.5), (5, 10, 0.5), (10, 10, 0.5), (5, 20, 0.5), (5, 10, 0.7),
                              (10, 20, 0.7), (5, 10, 0.85), (10, 10, 0.9), (5, 10, 0.95)]]
    out += [Candidate(f"k1 {k1} b {b}", k1=k1, b=b)
            for k1 in (0.9, 1.2, 1.6, 2.0) for b in (0.4, 0.5, 0.6, 0.75, 0.9) if (k1, b) != (1.2, 0.75)]
    out += [Candidate(f"column weights {w[0]:g}/{w[1]:g}/{w[2]:g}", weights=w)
            for w in [(1.0, 2.0, 1.0), (1.0, 0.5, 1.0), (1.0, 1.0, 2.0), (1.0, 2.0, 2.0)]]
    out += [Candidate(f"k1 {k1} b {b}, heading x2", k1=k1, b=b, weights=(1.0, 2.0, 1.0))
            for k1, b in [(1.2, 0.4), (1.6, 0.5), (2.0, 0.6)]]
    out += [Candidate("k1 2.0 b 0.5, budget off", k1=2.0, b=0.5, budget=False),
            Candidate("k1 2.0 b 0.5, Lucene's stopwords out", k1=2.0, b=0.5, stop=LUCENE)]
    out += [Candidate("request words out of the embedded question", vector_stop=REQUEST),
            Candidate("NLTK's + request words out of the embedded question", vector_stop=NLTK | REQUEST),
            Candidate("request words out of both", stop=REQUEST, vector_stop=REQUEST)]
    out += [Candidate(f"proximity: bigram {o:g}, window {u:g}", proximity=(o, u))
            for o, u in [(0.1, 0.1), (0.2, 0.2), (0.3, 0.0), (0.0, 0.3), (0.5, 0.5)]]
    out += [Candidate(f"k1 {k1} b {b}, proximity: bigram 0.2, window 0.2", k1=k1, b=b, proximity=(0.2, 0.2))
            for k1, b in [(1.6, 0.5), (2.0, 0.5)]]
    out += [Candidate(f"Rocchio beta {beta:g} m {m} ({how})", rocchio=(beta, m, how))
            for beta, m, how in [(0.5, 3, "fused"), (0.3, 3, "agree"), (0.5, 3, "agree"), (1.0, 3, "agree"),
                                 (0.3, 3, "vector"), (0.5, 3, "vector")]]
    out += [Candidate(f"vector_alpha {a}", options={"vector_alpha": a}) for a in (0.5, 0.55, 0.65, 0.7)]
    # a better keyword list alone may want another balance: the fusion's alpha again
    out += [Candidate(f"NLTK's stopwords out, vector_alpha {a}", stop=NLTK, options={"vector_alpha": a})
            for a in (0.4, 0.5, 0.7)]
    out += [Candidate(f"k1 2.0 b 0.5, proximity 0.2/0.2, vector_alpha {a}", k1=2.0, b=0.5,
                      proximity=(0.2, 0.2), options={"vector_alpha": a}) for a in (0.5, 0.7)]
    # the expanded keyword list carries the vector list's top passages: weigh it otherwise
    out += [Candidate(f"RM3 m 5 n 10 original 0.85, vector_alpha {a}", rm3=(5, 10, 0.85),
                      options={"vector_alpha": a}) for a in (0.3, 0.4, 0.5)]
    out += [Candidate(f"{c} candidates per list", options={"candidates": c}) for c in (50, 200)]
    return out


WINDOW = 8  # words: the unordered window of `proximity` (the sequential dependence model's)


class Postings:
    """FTS5's index of one vault in memory: each token's chunks, per-column counts and positions."""

    def __init__(self, instances: Sequence[tuple[str, int, str, int]],
                 sizes: Mapping[int, list[int]]) -> None:
        self.ids = np.array(sorted(sizes), dtype=np.int64)
        self.at = {int(c): i for i, c in enumerate(self.ids)}
        self.lengths = np.array([sum(sizes[int(c)]) for c in self.ids], dtype=float)
        counts: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        places: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for term, doc, col, offset in instances:
            counts[term][doc][COLUMNS.index(col)] += 1
            places[term][self.at[doc]].append(COLUMNS.index(col) * 1_000_000 + offset)
        # token -> {chunk index: its positions} (a column's offsets set apart from the next's)
        self.positions = {t: {d: np.array(v) for d, v in docs.items()} for t, docs in places.items()}
        self.postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.forward: dict[int, dict[str, int]] = defaultdict(dict)
        for term, docs in counts.items():
            self.postings[term] = (np.array([self.at[d] for d in docs]), np.array(list(docs.values()), float))
            for d, c in docs.items():
                self.forward[self.at[d]][term] = sum(c)
        self.df = {t: len(p[0]) for t, p in self.postings.items()}

    @property
    def n(self) -> int:
        return len(self.ids)

    def bm25(self, weighted: Sequence[tuple[str, float]], c: Candidate,
             content: Sequence[str] = ()) -> list[tuple[int, float]]:
        """(chunk id, score) best first, ties by id, as fts.py ranks: each (token, weight) adds
        weight x BM25 (a token twice counts twice, as FTS5's phrases do); a column's count is
        multiplied by its weight, as FTS5's bm25(weights) does."""
        average = self.lengths.sum() / self.n
        norm = c.k1 * (1 - c.b + c.b * self.lengths / average)
        scores, found = np.zeros(self.n), np.zeros(self.n, dtype=bool)
        w = np.array(c.weights)
        for token, weight in weighted:
            if token not in self.postings:
                continue
            at, tf = self.postings[token]
            f = tf @ w
            scores[at] += weight * bm25_idf(self.n, len(at)) * f * (c.k1 + 1) / (f + norm[at])
            found[at] = True
        if c.proximity:
            self._proximity(content, c, norm, scores, found)
        hit = np.flatnonzero(found)
        order = hit[np.lexsort((self.ids[hit], -scores[hit]))]
        return [(int(self.ids[i]), float(scores[i])) for i in order]

    def _proximity(self, content: Sequence[str], c: Candidate, norm: np.ndarray,
                   scores: np.ndarray, found: np.ndarray) -> None:
        """Adds the candidate's proximity scores: each pair of adjacent `content` tokens (the
        query's words in order, NLTK's stopwords out) scored as one BM25 term whose frequency
        in a chunk is how often the two stand next to each other (bigram), or within WINDOW
        words in either order."""
        assert c.proximity is not None
        for a, b in itertools.pairwise([t for t in content if t in self.positions]):
            if a == b:
                continue
            pa, pb = self.positions[a], self.positions[b]
            common = sorted(pa.keys() & pb.keys())
            for weight, ordered in zip(c.proximity, (True, False), strict=True):
                if not weight or not common:
                    continue
                tf = np.zeros(len(common))
                for j, d in enumerate(common):
                    gap = pb[d][None, :] - pa[d][:, None]
                    tf[j] = (gap == 1).sum() if ordered else (np.abs(gap) < WINDOW).sum()
                at = np.array(common)[tf > 0]
                tf = tf[tf > 0]
                if len(at):
                    scores[at] += weight * bm25_idf(self.n, len(at)) * tf * (c.k1 + 1) / (tf + norm[at])
                    found[at] = True


class Store:
    """The vault for everything but the two searches: keyword from `Postings` with the
    candidate's settings, vector from the lists fetched once."""

    def __init__(self, vault: Any, postings: Postings, embedder: BuiltinEmbedder) -> None:
        self.vault, self.postings, self.embedder = vault, postings, embedder
        self.vectors: dict[str, list[tuple[int, float]]] = {}
        self.candidate = Candidate("as shipped")
        self.extra: dict[str, float] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.vault, name)

    def tokens(self, words: list[str]) -> list[str]:
        """Each word's first FTS5 token (a word FTS5 reads as a phrase is rare; fts.py ranks it
        with FTS5's bm25())."""
        return [t[0] for t in self.vault._fts_tokens(words) if t]

    def keyword_search(self, query: str, k: int, collection_ids: Sequence[int] | None = None
                       ) -> list[tuple[int, float]]:
        c, p = self.candidate, self.postings
        words = [w for w in query_terms(query) if w not in c.stop] or query_terms(query)
        if c.budget and p.n > KEYWORD_BUDGET:
            cap = min(KEYWORD_BUDGET, (p.n + 1) // 2) + 1
            chunks = {w: min(cap, p.df.get(t, 0)) for w, t in zip(words, self.tokens(words), strict=False)}
            chunks.update((w, 0) for w in words if w not in chunks)
            words, _ = keyword_plan(words, chunks, p.n, KEYWORD_BUDGET)
        weighted = [(t, 1.0) for t in self.tokens(words)] + list(self.extra.items())
        content: list[str] = []
        if c.proximity:
            said = [w.lower() for w in re.findall(r"\w+", query) if w.lower() not in NLTK]
            content = self.tokens(said)
        return p.bm25(weighted, c, content)[:k]

    def vector_search(self, query: Any, k: int, collection_ids: Sequence[int] | None = None
                      ) -> list[tuple[int, float]]:
        """The vault's vector list of the question (less the candidate's vector_stop words),
        fetched once per text."""
        stop = self.candidate.vector_stop
        if stop:
            kept = [w for w in re.findall(r"\w+|\W+", query) if w.lower() not in stop]
            query = re.sub(r"\s+", " ", "".join(kept)).strip() or query
        if query not in self.vectors:
            self.vectors[query] = self.vault.vector_search(self.embedder.embed_query(query), 200, None)
        return self.vectors[query][:k]


class QueryText:
    """Stands in for the embedder: the 'vector' is the question, looked up in Store.vectors."""

    def embed_query(self, text: str) -> str:
        return text


@dataclass
class DevSet:
    name: str
    store: Store
    queries: dict[str, str]
    judged: Any  # qrels, or docqa's questions
    per_query: dict[str, float] = field(default_factory=dict)  # of the last scoring

    def score(self, search: Callable[[str], list[Hit]]) -> tuple[float, float | None]:
        """(headline figure, docqa page hit@1 or None)."""
        return self.score_hits({q: [{"path": h.path, "page": h.page, "text": h.text} for h in search(t)]
                                for q, t in self.queries.items()})

    def plain_rrf(self, r: Retriever) -> float:
        """Plain RRF (k 60, equal weights) of this retriever's keyword and vector lists, 100
        deep, fused as bench_quality.py fuses them (CISI, CACM: on documents; docqa: on passages)."""
        fused: dict[str, list[dict[str, Any]]] = {}
        for q, t in self.queries.items():
            lists = [[{"path": h.path, "page": h.page, "text": h.text} for h in r.search(t, k=100, mode=m)]
                     for m in ("keyword", "vector")]
            if self.name == "docqa":
                by_key = {(h["path"], h["page"], h["text"]): h for hits in lists for h in hits}
                order = bq.rrf([[(h["path"], h["page"], h["text"]) for h in hits] for hits in lists])
                fused[q] = [by_key[key] for key in order]
            else:
                fused[q] = [{"path": f"doc-{d}.txt"} for d in bq.rrf([bq._doc_ids(hits) for hits in lists])]
        return self.score_hits(fused)[0]

    def score_hits(self, hits: Mapping[str, list[dict[str, Any]]]) -> tuple[float, float | None]:
        """(headline figure, docqa hit@1 or None); each question's figure kept in `per_query`."""
        if self.name == "docqa":
            s = bq.docqa_scores({q: h[:10] for q, h in hits.items()}, self.judged)
            self.per_query = {str(q["id"]): bq.mrr10(bq.docqa_ranks(hits[str(q["id"])][:10], q)[0])
                              for q in self.judged}
            return s["page MRR@10"], s["page hit@1"]
        self.per_query = {q: bq.ndcg10(bq._doc_ids(hits[q]), self.judged[q]) for q in self.queries}
        return sum(self.per_query.values()) / len(self.per_query), None


def load(name: str, work: Path, data: Path, embedder: BuiltinEmbedder) -> DevSet:
    vault = vault_store.unlock(work / name / "home", bq.PASSPHRASE, read_only=True)
    db = vault.db
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.bench_instances"
               " USING fts5vocab(main, chunks_fts, instance)")
    instances = db.execute("SELECT term, doc, col, offset FROM temp.bench_instances").fetchall()
    sizes = {i: _varints(bytes(s)) for i, s in db.execute("SELECT id, sz FROM chunks_fts_docsize")}
    judged: Any
    if name == "docqa":
        judged = [json.loads(line) for line in (data / "docqa" / "questions.jsonl").read_text().splitlines()
                  if line.strip()]
        queries = {str(q["id"]): q["question"] for q in judged}
    else:
        _, raw, judged = bq.load_smart(name, data / name)
        queries = {q: re.sub(r"\s+", " ", t) for q, t in raw.items()}
    store = Store(vault, Postings(instances, sizes), embedder)
    differ = sum([c for c, _ in store.keyword_search(t, 100)] != [c for c, _ in vault.keyword_search(t, 100)]
                 for t in queries.values())
    bq.log(f"{name}: {store.postings.n} chunks, {len(queries)} questions; keyword lists that differ"
           f" from the vault's: {differ}")
    return DevSet(name, store, queries, judged)


def feedback(s: DevSet, query: str, first: list[Hit], m: int, n: int, original: float) -> dict[str, float]:
    """RM3's expansion: the n likeliest words of the top m passages (P(w|R): each passage's
    term frequencies over its length, averaged), leaving out the query's own, stopwords and
    request words, numbers, words of 1-2 letters and words in over a tenth of the chunks. Each
    word of the query weighs 1; the expansion's weights, in proportion to P(w|R), sum to
    (1 - original) / original x the query's content words (those not in NLTK | REQUEST): RM3's
    interpolation with an index that keeps its stopwords."""
    p, store = s.store.postings, s.store
    own = set(store.tokens(query_terms(query)))
    likely: dict[str, float] = defaultdict(float)
    passages = [p.at[h.chunk_id] for h in first[:m]]
    for i in passages:
        words = p.forward[i]
        length = sum(words.values()) or 1
        for t, c in words.items():
            likely[t] += c / length / len(passages)
    kept = {t: v for t, v in likely.items() if t not in own and t not in NLTK | REQUEST
            and not t.isdigit() and len(t) > 2 and p.df[t] <= 0.1 * p.n}
    best = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    total = sum(v for _, v in best) or 1.0
    content = own - set(store.tokens(sorted(NLTK | REQUEST)))
    return {t: (1 - original) / original * max(1, len(content)) * v / total for t, v in best}


class Rocchio(Retriever):
    """The shipped retriever whose vector half searches with the question's vector moved
    towards the mean of some passages' vectors (Candidate.rocchio)."""

    def _dense(self, query: str, n: int, collection_ids: Sequence[int] | None
               ) -> tuple[list[tuple[int, float]], float, float]:
        store: Store = self.store  # type: ignore[assignment]
        vector = store.vector_search(query, n)
        assert store.candidate.rocchio is not None
        beta, m, how = store.candidate.rocchio
        keyword = store.keyword_search(query, n)
        if how == "vector":
            chosen = [cid for cid, _ in vector[:m]]
        elif how == "agree":
            top = {cid for cid, _ in keyword[:10]}
            chosen = [cid for cid, _ in vector[:10] if cid in top][:m]
        else:
            similar = [(cid, 1.0 - d) for cid, d in vector]
            fused = blend(fuse_scores(keyword, similar, self.options.vector_alpha), keyword, vector)
            chosen = [cid for cid, _ in fused[:m]]
        rows = [store.vault.document_vectors(c.document_id)[c.ordinal] for c in store.vault.chunks(chosen)]
        if rows:
            qv = store.embedder.embed_query(query)
            centroid = np.mean(rows, axis=0)
            moved = qv / np.linalg.norm(qv) + beta * centroid / np.linalg.norm(centroid)
            vector = store.vault.vector_search((moved / np.linalg.norm(moved)).astype(np.float32), n, None)
        return vector, 0.0, 0.0


def run(c: Candidate, s: DevSet, plain: bool = False, mode: str = "hybrid"
        ) -> tuple[float, float | None, float | None]:
    """(headline figure, docqa hit@1, plain RRF's headline figure if `plain`) of a candidate,
    its hybrid search (or `mode`: its keyword or vector list alone)."""
    s.store.candidate = c
    kind = Rocchio if c.rocchio else Retriever
    r = kind(s.store, QueryText(), SearchOptions(**c.options))  # type: ignore[arg-type]

    def search(text: str) -> list[Hit]:
        if c.rm3 is None:
            return r.search(text, k=20, mode=mode)
        m, n, original = c.rm3
        s.store.extra = feedback(s, text, r.search(text, k=m), m, n, original)
        try:
            return r.search(text, k=20, mode=mode)
        finally:
            s.store.extra = {}
    figure, hit1 = s.score(search)
    per_query = dict(s.per_query)
    plain_figure = s.plain_rrf(r) if plain else None
    s.per_query = per_query
    return figure, hit1, plain_figure


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--work", type=Path, required=True, help="bench_quality.py's --work, built")
    ap.add_argument("--data-dir", type=Path, default=bq.DEFAULT_DATA)
    ap.add_argument("--only", help="run the candidates whose label holds one of these texts"
                    " (separated by |; as shipped always runs)")
    ap.add_argument("--mode", choices=("hybrid", "keyword", "vector"), default="hybrid",
                    help="score the hybrid search (default) or one list alone")
    ap.add_argument("--plain-rrf", action="store_true",
                    help="also plain RRF over each candidate's own keyword and vector lists (slow)")
    ap.add_argument("--paired", action="store_true",
                    help="also each candidate's change per question against the shipped settings:"
                    " mean, its standard error, questions up / down, per set")
    args = ap.parse_args()
    embedder = BuiltinEmbedder()
    sets = [load(name, args.work, args.data_dir, embedder) for name in bq.SETS]
    wanted = [w for w in (args.only or "").split("|") if w]
    chosen = [c for c in candidates()
              if not wanted or any(w in c.label for w in wanted) or c.label.startswith("as shipped")]
    rows = []
    paired: list[str] = []
    shipped: list[dict[str, float]] = []
    for c in chosen:
        figures = [run(c, s, args.plain_rrf, args.mode) for s in sets]
        if not shipped:
            shipped = [dict(s.per_query) for s in sets]
        elif args.paired:
            paired.append(f"| {c.label} | " + " | ".join(
                _paired([s.per_query[q] - base_q[q] for q in base_q])
                for s, base_q in zip(sets, shipped, strict=True)) + " |")
        rows.append((c.label, [f[0] for f in figures], figures[-1][1], [f[2] for f in figures]))
        bq.log(f"{c.label}: " + " ".join(f"{f[0]:.4f}" for f in figures))
    base = rows[0][1]
    plain_head = " | cisi − plain RRF | cacm − plain RRF | docqa − plain RRF" if args.plain_rrf else ""
    print("| candidate | cisi nDCG@10 | cacm nDCG@10 | docqa page MRR@10 | docqa hit@1 | average"
          f" | cisi Δ | cacm Δ | docqa Δ | average Δ{plain_head} |")
    print("|" + " --- |" * (13 if args.plain_rrf else 10))
    for label, f, hit1, plain in sorted(rows, key=lambda r: -sum(r[1])):
        d = [a - b for a, b in zip(f, base, strict=True)]
        over = "".join(f" | {a - p:+.4f}" for a, p in zip(f, plain, strict=True) if p is not None)
        print(f"| {label} | {f[0]:.4f} | {f[1]:.4f} | {f[2]:.4f} | {hit1:.3f} | {sum(f) / 3:.4f} | "
              + " | ".join(f"{x:+.4f}" for x in d) + f" | {sum(d) / 3:+.4f}{over} |")
    if paired:
        print("\n| candidate, per question vs as shipped | cisi | cacm | docqa |\n| --- | --- | --- | --- |")
        print("\n".join(paired))
    for s in sets:
        s.store.vault.lock()
    return 0


def _paired(changes: Sequence[float]) -> str:
    """'mean ± standard error, up/down' of per-question changes."""
    n = len(changes)
    mean = sum(changes) / n
    se = (sum((x - mean) ** 2 for x in changes) / n) ** 0.5 / n ** 0.5
    up, down = sum(x > 1e-9 for x in changes), sum(x < -1e-9 for x in changes)
    return f"{mean:+.4f} ± {se:.4f}, {up} up / {down} down"


if __name__ == "__main__":
    raise SystemExit(main())
