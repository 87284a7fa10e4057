"""How far the hybrid search can go on the signals it has: the vector side and the document
neighbourhood varied on all three dev sets, and other embedders' vectors put in (issue 16).

    .venv/bin/python benchmarks/bench_signal_ceiling.py --work DIR   # DIR: bench_quality.py's --work
        [--only "TEXT|..."] [--sentences] [--vectors NAME=PREFIX ...]

bench_keyword_side.py varied the keyword side and the fusion; this script varies what is left,
in process on the vaults bench_quality.py built (opened read-only), through the shipped Retriever
(fusion, dedupe, scraps, cited pages), scored as bench_quality.py scores (CISI and CACM nDCG@10
over distinct documents, docqa page MRR@10):

- *oracle alpha*: for each question the best of six fusion weights (vector_alpha 0.3-0.8), chosen
  with its judgements: the ceiling of any query-dependent weighting of these two lists;
- *score regularisation* (the cluster hypothesis, Diaz 2005): each of the first m fused
  candidates' z-score moved towards the mean of its knn most similar candidates' (cosine of
  their vectors, weighted by it), before the blend with plain RRF;
- *centred cosine* and a *hub penalty* on the vector list: cos(q - b.mu, d - b.mu) with mu the
  vault's mean vector, or cos(q, d) - b.cos(d, mu) (anisotropy and hubness corrections);
- *neighbour expansion* of the keyword side: each chunk's term counts plus w x the
  similarity-weighted counts of its k nearest chunks (cluster-based document expansion);
- *sentence windows* (--sentences, about 2 minutes more): each chunk's vector score mixed with
  the best of its two-sentence windows' (lam);
- *another embedder* (--vectors NAME=PREFIX): chunk and question vectors from PREFIX-{set}.npz
  (arrays D: chunk vectors in the vault's chunk id order ids, Q: question vectors in the order
  qk of question ids), alone, fused with the keyword list instead of the built-in vectors, and
  as a third list beside both ("three lists": z-scores, the vector lists sharing alpha). The
  .npz files come from outside the project (an embedder the project does not ship, e.g. with
  sentence-transformers in a scratch venv: RESULTS.md gives the recipe); --export FILE writes
  the chunk texts as the built-in embedder reads them (title and heading path above the text)
  and the questions, for that.

Prints one Markdown row per candidate, best average first, with each set's change from the
shipped settings. About 1 minute on the 2-core build machine without --sentences.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_keyword_side as ks
import bench_quality as bq

from ragdesk.core.embedding.builtin import BuiltinEmbedder
from ragdesk.core.records import Hit
from ragdesk.core.retrieval import PLAIN_RRF_K, Retriever, SearchOptions, _zscores, blend, fuse, fuse_scores
from ragdesk.core.store.keyword import bm25_idf

ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
Lists = Callable[[str, int], list[tuple[int, float]]]  # question text, n -> (chunk id, distance)


class Bench:
    """One dev set with what the candidates need: the vault's vectors (in the postings' chunk
    order), each chunk's document, term counts, and the question vectors."""

    def __init__(self, s: ks.DevSet, embedder: BuiltinEmbedder) -> None:
        self.s, self.embedder = s, embedder
        p = s.store.postings
        index = s.store.vault.vector_index()
        assert index is not None, "the vault's vectors are not in memory"
        row = {int(c): i for i, c in enumerate(index._ids[: index.size])}
        self.ids = p.ids
        self.vectors = np.ascontiguousarray(index._matrix[[row[int(c)] for c in p.ids]], dtype=np.float64)
        self.at = {int(c): i for i, c in enumerate(p.ids)}
        self.chunks = {c.id: c for c in s.store.vault.chunks([int(c) for c in p.ids])}
        self.shipped_vectors = s.store.vector_search
        self._questions: dict[str, np.ndarray] = {}
        self._similar: np.ndarray | None = None
        self._counts: tuple[np.ndarray, dict[str, int]] | None = None

    def question(self, text: str) -> np.ndarray:
        if text not in self._questions:
            self._questions[text] = self.embedder.embed_query(text).astype(np.float64)
        return self._questions[text]

    def ranked(self, sims: np.ndarray, n: int) -> list[tuple[int, float]]:
        top = np.argsort(-sims, kind="stable")[:n]
        return [(int(self.ids[i]), float(1.0 - sims[i])) for i in top]

    @property
    def similar(self) -> np.ndarray:
        """Chunk x chunk cosine, the diagonal -1."""
        if self._similar is None:
            self._similar = self.vectors @ self.vectors.T
            np.fill_diagonal(self._similar, -1.0)
        return self._similar

    @property
    def counts(self) -> tuple[np.ndarray, dict[str, int]]:
        """(chunk x token counts over all columns, token -> column)."""
        if self._counts is None:
            p = self.s.store.postings
            column = {t: j for j, t in enumerate(sorted(p.postings))}
            tf = np.zeros((p.n, len(column)), dtype=np.float32)
            for t, (at, f) in p.postings.items():
                tf[at, column[t]] = f.sum(1)
            self._counts = tf, column
        return self._counts


# --- the candidates: each sets up the set's store and returns a search function ----------------

Search = Callable[[str], list[Hit]]


def shipped(b: Bench, options: dict[str, Any] | None = None, mode: str = "hybrid") -> Search:
    b.s.store.vector_search = b.shipped_vectors
    r = Retriever(b.s.store, ks.QueryText(), SearchOptions(**(options or {})))
    return lambda text: r.search(text, k=20, mode=mode)


class Regularised(Retriever):
    """The shipped fusion with each of the first m z-scored candidates moved towards its knn
    most similar candidates' scores (weights: their cosine, at least 0) by gamma."""

    bench: Bench
    gamma, knn, m = 0.0, 5, 100

    def search(self, query: str, k: int | None = None, collection_ids: Sequence[int] | None = None,
               document_ids: Sequence[int] | None = None, mode: str | None = None) -> list[Hit]:
        n = self.options.candidates
        keyword = self.store.keyword_search(query, n)
        vector = self.store.vector_search(query, n)
        ranked = fuse_scores(keyword, [(c, 1.0 - d) for c, d in vector], self.options.vector_alpha)
        head = ranked[: self.m]
        if len(head) > self.knn:
            rows = np.array([self.bench.at[c] for c, _ in head])
            scores = np.array([v for _, v in head])
            sim = self.bench.similar[np.ix_(rows, rows)]
            near = np.argpartition(-sim, self.knn - 1, axis=1)[:, : self.knn]
            w = np.maximum(np.take_along_axis(sim, near, 1), 0.0)
            neighbours = (w * scores[near]).sum(1) / np.maximum(w.sum(1), 1e-9)
            moved = (1 - self.gamma) * scores + self.gamma * neighbours
            order = np.lexsort((np.array([c for c, _ in head]), -moved))
            ranked = [(head[i][0], float(moved[i])) for i in order] + ranked[self.m :]
        return self._hits(blend(ranked, keyword, vector), query, k or 10, None)


def regularised(gamma: float, knn: int, m: int) -> Callable[[Bench], Search]:
    def make(b: Bench) -> Search:
        b.s.store.vector_search = b.shipped_vectors
        r = Regularised(b.s.store, ks.QueryText(), SearchOptions())
        r.bench, r.gamma, r.knn, r.m = b, gamma, knn, m
        return lambda text: r.search(text, k=20)
    return make


def corrected(kind: str, beta: float, alpha: float = 0.6, mode: str = "hybrid") -> Callable[[Bench], Search]:
    """The vector list by centred cosine (kind "centre") or with a hub penalty ("hub")."""
    def make(b: Bench) -> Search:
        mu = b.vectors.mean(0)
        if kind == "centre":
            rows = b.vectors - beta * mu
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        else:
            penalty = beta * (b.vectors @ (mu / np.linalg.norm(mu)))

        def vector_search(text: str, n: int, collection_ids: Any = None) -> list[tuple[int, float]]:
            q = b.question(text)
            if kind == "centre":
                q = q - beta * mu
                return b.ranked(rows @ (q / np.linalg.norm(q)), n)
            return b.ranked(b.vectors @ q - penalty, n)
        b.s.store.vector_search = vector_search
        r = Retriever(b.s.store, ks.QueryText(), SearchOptions(vector_alpha=alpha))
        return lambda text: r.search(text, k=20, mode=mode)
    return make


def expanded(k: int, w: float, mode: str = "hybrid") -> Callable[[Bench], Search]:
    """BM25 over each chunk's counts plus w x its k nearest chunks' (similarity-weighted)."""
    def make(b: Bench) -> Search:
        tf, column = b.counts
        near = np.argpartition(-b.similar, k - 1, axis=1)[:, :k]
        sim = np.maximum(np.take_along_axis(b.similar, near, 1), 0.0)
        sim /= np.maximum(sim.sum(1, keepdims=True), 1e-9)
        x = tf.copy()
        for j in range(k):
            x += w * sim[:, j : j + 1].astype(np.float32) * tf[near[:, j]]
        lengths = x.sum(1)
        p = b.s.store.postings

        def bm25(weighted: Sequence[tuple[str, float]], c: ks.Candidate,
                 content: Sequence[str] = ()) -> list[tuple[int, float]]:
            norm = c.k1 * (1 - c.b + c.b * lengths / lengths.mean())
            scores, found = np.zeros(p.n), np.zeros(p.n, dtype=bool)
            for token, weight in weighted:
                if token not in column:
                    continue
                f = x[:, column[token]]
                hit = f > 0
                idf = bm25_idf(p.n, p.df[token])
                scores[hit] += weight * idf * f[hit] * (c.k1 + 1) / (f[hit] + norm[hit])
                found |= hit
            h = np.flatnonzero(found)
            order = h[np.lexsort((p.ids[h], -scores[h]))]
            return [(int(p.ids[i]), float(scores[i])) for i in order]
        p.bm25 = bm25  # type: ignore[method-assign]
        return shipped(b, mode=mode)
    return make


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(])|\n{2,}")


def sentences(lam: float) -> Callable[[Bench], Search]:
    """Each chunk's vector score mixed with its best two-sentence window's (lam)."""
    def make(b: Bench) -> Search:
        if not hasattr(b, "windows"):
            texts, owner = [], []
            for row, cid in enumerate(b.ids):
                text = b.chunks[int(cid)].text
                parts = [p.strip() for p in _SENTENCE.split(text) if len(p.strip()) > 20]
                windows = ([" ".join(parts[i : i + 2]) for i in range(max(1, len(parts) - 1))]
                           if parts else [text])
                texts += windows
                owner += [row] * len(windows)
            b.windows = (np.asarray(b.embedder.embed(texts), dtype=np.float64), np.array(owner))  # type: ignore[attr-defined]
        windows, owner = b.windows  # type: ignore[attr-defined]

        def vector_search(text: str, n: int, collection_ids: Any = None) -> list[tuple[int, float]]:
            q = b.question(text)
            best = np.full(len(b.ids), -1.0)
            np.maximum.at(best, owner, windows @ q)
            return b.ranked((1 - lam) * (b.vectors @ q) + lam * best, n)
        b.s.store.vector_search = vector_search
        r = Retriever(b.s.store, ks.QueryText(), SearchOptions())
        return lambda text: r.search(text, k=20)
    return make


class ThreeLists(Retriever):
    """Keyword, built-in vectors and another embedder's: (1 - alpha) z(keyword) + alpha/2 (z(one)
    + z(other)), blended by RRF k 60 with plain RRF of the three lists (the shipped recipe, one
    list more)."""

    other: Lists

    def search(self, query: str, k: int | None = None, collection_ids: Sequence[int] | None = None,
               document_ids: Sequence[int] | None = None, mode: str | None = None) -> list[Hit]:
        n, a = self.options.candidates, self.options.vector_alpha
        lists = [self.store.keyword_search(query, n),
                 [(c, 1.0 - d) for c, d in self.store.vector_search(query, n)],
                 [(c, 1.0 - d) for c, d in self.other(query, n)]]
        (zk, mk), (z1, m1), (z2, m2) = (_zscores(x) for x in lists)
        scores = {c: (1 - a) * zk.get(c, mk) + a / 2 * (z1.get(c, m1) + z2.get(c, m2))
                  for c in zk.keys() | z1.keys() | z2.keys()}
        zscored = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        plain = fuse([(1.0, [c for c, _ in x]) for x in lists], PLAIN_RRF_K)
        position = {c: i for i, (c, _) in enumerate(zscored)}
        both = dict(fuse([(1.0, [c for c, _ in zscored]), (1.0, [c for c, _ in plain])], PLAIN_RRF_K))
        ranked = sorted(both.items(), key=lambda kv: (-kv[1], position.get(kv[0], len(position)), kv[0]))
        return self._hits(ranked, query, k or 10, None)


def other_embedder(prefix: str, how: str, alpha: float = 0.6) -> Callable[[Bench], Search]:
    """Another embedder's vectors (PREFIX-{set}.npz): "vector" alone, "hybrid" instead of the
    built-in ones, "three" beside them."""
    def make(b: Bench) -> Search:
        z = np.load(f"{prefix}-{b.s.name}.npz")
        row = {int(c): i for i, c in enumerate(z["ids"])}
        chunks = np.asarray(z["D"], dtype=np.float64)[[row[int(c)] for c in b.ids]]
        questions = {b.s.queries[str(q)]: v for q, v in zip(z["qk"], z["Q"], strict=True)}

        def vector_search(text: str, n: int, collection_ids: Any = None) -> list[tuple[int, float]]:
            return b.ranked(chunks @ questions[text], n)
        if how == "three":
            b.s.store.vector_search = b.shipped_vectors
            r: Retriever = ThreeLists(b.s.store, ks.QueryText(), SearchOptions(vector_alpha=alpha))
            r.other = vector_search  # type: ignore[attr-defined]
            return lambda text: r.search(text, k=20)
        b.s.store.vector_search = vector_search  # type: ignore[method-assign,assignment]
        r = Retriever(b.s.store, ks.QueryText(), SearchOptions(vector_alpha=alpha))  # type: ignore[arg-type]
        return lambda text: r.search(text, k=20, mode="vector" if how == "vector" else "hybrid")
    return make


def candidates(args: argparse.Namespace) -> list[tuple[str, Callable[[Bench], Search]]]:
    out: list[tuple[str, Callable[[Bench], Search]]] = [
        ("as shipped", lambda b: shipped(b)),
        ("as shipped, vector list alone", lambda b: shipped(b, mode="vector")),
        ("as shipped, keyword list alone", lambda b: shipped(b, mode="keyword"))]
    out += [(f"score regularisation gamma {g} knn {k} m {m}", regularised(g, k, m))
            for g, k, m in itertools.product((0.2, 0.3, 0.4, 0.5), (3, 5, 7, 10), (30, 100))]
    for kind, beta in [("centre", 0.5), ("centre", 0.7), ("centre", 1.0),
                       ("hub", 0.1), ("hub", 0.2), ("hub", 0.3)]:
        name = "centred cosine" if kind == "centre" else "hub penalty"
        out.append((f"{name} {beta}, vector list alone", corrected(kind, beta, mode="vector")))
        out += [(f"{name} {beta}, vector_alpha {a}", corrected(kind, beta, a)) for a in (0.5, 0.6, 0.7)]
    for k, w in [(5, 0.1), (5, 0.3), (10, 0.3), (5, 0.6), (10, 1.0)]:
        out.append((f"neighbour expansion k {k} w {w}, keyword list alone", expanded(k, w, mode="keyword")))
        out.append((f"neighbour expansion k {k} w {w}", expanded(k, w)))
    if args.sentences:
        out += [(f"sentence windows lam {lam}", sentences(lam)) for lam in (0.3, 0.5, 0.7)]
    for spec in args.vectors:
        name, prefix = spec.split("=", 1)
        out.append((f"{name} vectors, vector list alone", other_embedder(prefix, "vector")))
        out += [(f"{name} vectors instead, vector_alpha {a}", other_embedder(prefix, "hybrid", a))
                for a in (0.4, 0.5, 0.6, 0.7)]
        out += [(f"{name} vectors as a third list, vector_alpha {a}", other_embedder(prefix, "three", a))
                for a in (0.5, 0.6, 0.7)]
    return out


def oracle(benches: Sequence[Bench]) -> tuple[list[float], list[float]]:
    """(each set's figure with the best fusion weight per question, the best fixed weight's)."""
    best, fixed = [], []
    for b in benches:
        per: list[dict[str, float]] = []
        for a in ALPHAS:
            b.s.score(shipped(b, {"vector_alpha": a}))
            per.append(dict(b.s.per_query))
        table = np.array([[p[q] for p in per] for q in per[0]])
        best.append(float(table.max(1).mean()))
        fixed.append(float(table.mean(0).max()))
    return best, fixed


def export(benches: Sequence[Bench], path: Path) -> None:
    """The chunk texts as the built-in embedder reads them and the questions, per set."""
    out = {}
    for b in benches:
        texts = []
        for cid in b.ids:
            c = b.chunks[int(cid)]
            where = c.context.split("\n", 1)[0]
            texts.append(f"{where}\n{c.text}" if where else c.text)
        out[b.s.name] = {"ids": [int(c) for c in b.ids], "texts": texts, "queries": b.s.queries}
    path.write_text(json.dumps(out), encoding="utf-8")
    bq.log(f"wrote {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--work", type=Path, required=True, help="bench_quality.py's --work, built")
    ap.add_argument("--data-dir", type=Path, default=bq.DEFAULT_DATA)
    ap.add_argument("--only", help="run the candidates whose label holds one of these texts (|-separated)")
    ap.add_argument("--sentences", action="store_true", help="also the sentence-window candidates (slow)")
    ap.add_argument("--vectors", action="append", default=[], metavar="NAME=PREFIX",
                    help="another embedder's vectors from PREFIX-{cisi,cacm,docqa}.npz")
    ap.add_argument("--export", type=Path, metavar="FILE",
                    help="write the chunk texts and questions (JSON) for another embedder, and stop")
    args = ap.parse_args()
    embedder = BuiltinEmbedder()
    benches = [Bench(ks.load(name, args.work, args.data_dir, embedder), embedder) for name in bq.SETS]
    if args.export:
        export(benches, args.export)
        return 0
    wanted = [w for w in (args.only or "").split("|") if w]
    rows = []
    for label, make in candidates(args):
        if wanted and not any(w in label for w in wanted) and label != "as shipped":
            continue
        figures = [b.s.score(make(b))[0] for b in benches]
        for b in benches:  # undo what a candidate replaced
            b.s.store.vector_search = b.shipped_vectors  # type: ignore[method-assign]
            b.s.store.postings.__dict__.pop("bm25", None)
        rows.append((label, figures))
        bq.log(f"{label}: " + " ".join(f"{f:.4f}" for f in figures))
    base = rows[0][1]
    print("| candidate | cisi nDCG@10 | cacm nDCG@10 | docqa page MRR@10 | average"
          " | cisi Δ | cacm Δ | docqa Δ |")
    print("|" + " --- |" * 8)
    for label, f in sorted(rows, key=lambda r: -sum(r[1])):
        print(f"| {label} | {f[0]:.4f} | {f[1]:.4f} | {f[2]:.4f} | {sum(f) / 3:.4f} | "
              + " | ".join(f"{a - b:+.4f}" for a, b in zip(f, base, strict=True)) + " |")
    best, fixed = oracle(benches)
    print(f"\noracle: the best of vector_alpha {', '.join(map(str, ALPHAS))} for each question (chosen with"
          f" its judgements): cisi {best[0]:.4f}, cacm {best[1]:.4f}, docqa {best[2]:.4f}; the best"
          f" single alpha per set: {fixed[0]:.4f}, {fixed[1]:.4f}, {fixed[2]:.4f}")
    for b in benches:
        b.s.store.vault.lock()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
