"""Which fusion of the keyword and vector lists holds on all three dev sets (issue 16).

    .venv/bin/python benchmarks/bench_fusion.py [--work DIR] [--json FILE] [--ragdesk BIN]
        [--data-dir ../shared/data] [--corpus ../shared/corpus]

Through the command line, as benchmarks/bench_quality.py does (its vaults, loaders and metrics are
reused: `--work` takes the same directory and re-indexes nothing already built), each query's
keyword and vector lists are fetched once, 100 deep with their scores (`ragdesk search --batch
--mode keyword|vector`: BM25, and 1 − cosine distance). Every candidate fusion is then computed
here, offline, and scored on CISI nDCG@10, CACM nDCG@10 and docqa page MRR@10:

- RRF, score = 1/(k + keyword rank) + w/(k + vector rank), k in {10, 20, 40, 60, 100} and
  vector weight w in {0.5, 0.75, 1, 1.5, 2} ("plain RRF" is k 60, w 1);
- convex combination alpha·norm(vector) + (1 − alpha)·norm(keyword), alpha 0.3 … 0.8, with
  min-max normalisation (a passage missing from a list scores 0 there) or z-scores (missing: the
  list's lowest z, or 0, the list's mean);
- the same with a query-length-dependent alpha (short questions lean on keywords), and CombMNZ
  (the min-max convex score times the number of lists holding the passage), z-scores over the
  top 20 of each list only, and the z-score ranking fused again with plain RRF's.

It prints every candidate with the three figures, their average and the margin over plain RRF on
each set, best average first, and the choice: the best average among candidates that beat plain
RRF by ≥ 0.01 on every set, else the best average (and says so). Choosing by one set is what
issue 16 forbids.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_quality as bq  # a sibling script, not a package

Key = tuple[Any, ...]
Scored = list[tuple[Key, float]]  # a mode's list, best first
Fusion = Callable[[Scored, Scored, str], list[Key]]
METRIC = {"cisi": "nDCG@10", "cacm": "nDCG@10", "docqa": "page MRR@10"}
MARGIN = 0.01


def key(hit: Mapping[str, Any]) -> Key:
    """A passage is the same in both lists when its file, page and text are (bench_quality's rule)."""
    return (hit.get("path"), hit.get("page"), hit.get("text"))


def _ordered(scores: Mapping[Key, float], first_seen: Sequence[Key]) -> list[Key]:
    """Best score first; ties in order of first appearance (keyword list first)."""
    position = {k: i for i, k in reversed(list(enumerate(first_seen)))}
    return sorted(scores, key=lambda k: (-scores[k], position[k]))


def rrf(k: float, w: float) -> Fusion:
    def fuse(kw: Scored, vec: Scored, query: str) -> list[Key]:
        scores: dict[Key, float] = {}
        for weight, lst in ((1.0, kw), (w, vec)):
            for rank, (item, _) in enumerate(lst, start=1):
                scores[item] = scores.get(item, 0.0) + weight / (k + rank)
        return _ordered(scores, [i for i, _ in kw] + [i for i, _ in vec])
    return fuse


def _minmax(lst: Scored) -> tuple[dict[Key, float], float]:
    if not lst:
        return {}, 0.0
    vals = [s for _, s in lst]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        return {i: 1.0 for i, _ in lst}, 0.0
    return {i: (s - lo) / (hi - lo) for i, s in lst}, 0.0


def _zscore(missing_low: bool, top: int = 0) -> Callable[[Scored], tuple[dict[Key, float], float]]:
    """z-scores; with `top`, the mean and spread are those of the list's first `top` only."""
    def norm(lst: Scored) -> tuple[dict[Key, float], float]:
        if top:
            lst = lst[:top]
        if not lst:
            return {}, 0.0
        vals = [s for _, s in lst]
        mean, sd = statistics.fmean(vals), statistics.pstdev(vals)
        if sd == 0:
            return {i: 0.0 for i, _ in lst}, 0.0
        z = {i: (s - mean) / sd for i, s in lst}
        return z, (min(z.values()) if missing_low else 0.0)
    return norm


def words(query: str) -> int:
    return len(query.split())


def convex(alpha: float | Callable[[str], float],
           norm: Callable[[Scored], tuple[dict[Key, float], float]]) -> Fusion:
    def fuse(kw: Scored, vec: Scored, query: str) -> list[Key]:
        a = alpha(query) if callable(alpha) else alpha
        nk, mk = norm(kw)
        nv, mv = norm(vec)
        scores = {i: a * nv.get(i, mv) + (1 - a) * nk.get(i, mk) for i in {*nk, *nv}}
        return _ordered(scores, [i for i, _ in kw] + [i for i, _ in vec])
    return fuse


def comb_mnz(alpha: float) -> Fusion:
    """The convex min-max score times the number of lists that hold the passage."""
    def fuse(kw: Scored, vec: Scored, query: str) -> list[Key]:
        nk, _ = _minmax(kw)
        nv, _ = _minmax(vec)
        scores = {i: (alpha * nv.get(i, 0.0) + (1 - alpha) * nk.get(i, 0.0)) * ((i in nk) + (i in nv))
                  for i in {*nk, *nv}}
        return _ordered(scores, [i for i, _ in kw] + [i for i, _ in vec])
    return fuse


def blend(a: Fusion, b: Fusion) -> Fusion:
    """Two fusions' rankings fused again by RRF (k 60)."""
    def fuse(kw: Scored, vec: Scored, query: str) -> list[Key]:
        ra, rb = a(kw, vec, query), b(kw, vec, query)
        return rrf(60, 1.0)([(i, 0.0) for i in ra], [(i, 0.0) for i in rb], query)
    return fuse


def by_length(short: float, long: float, cut: int = 10) -> Callable[[str], float]:
    return lambda q: short if words(q) <= cut else long


def candidates() -> dict[str, Fusion]:
    out: dict[str, Fusion] = {}
    for k in (10, 20, 40, 60, 100):
        for w in (0.5, 0.75, 1.0, 1.5, 2.0):
            out[f"RRF k={k} w_vec={w:g}"] = rrf(k, w)
    alphas = [round(0.3 + 0.1 * i, 1) for i in range(6)]
    for a in alphas:
        out[f"convex min-max a={a:g}"] = convex(a, _minmax)
        out[f"convex z (missing=min) a={a:g}"] = convex(a, _zscore(True))
        out[f"convex z (missing=0) a={a:g}"] = convex(a, _zscore(False))
    for a in (0.55, 0.65):  # between the grid's steps: is the best a plateau or a spike?
        out[f"convex min-max a={a:g}"] = convex(a, _minmax)
        out[f"convex z (missing=min) a={a:g}"] = convex(a, _zscore(True))
    for a in (0.5, 0.6):
        out[f"CombMNZ min-max a={a:g}"] = comb_mnz(a)
        out[f"convex z (missing=min) over the top 20 a={a:g}"] = convex(a, _zscore(True, top=20))
        out[f"convex z (missing=min) a={a:g} + RRF k=60"] = blend(convex(a, _zscore(True)), rrf(60, 1.0))
    for short in (0.3, 0.4, 0.5):
        for long in (0.6, 0.7, 0.8):
            label = f"convex min-max a={short:g} (<=10 words) / {long:g}"
            out[label] = convex(by_length(short, long), _minmax)
    return out


PLAIN = "RRF k=60 w_vec=1"


@dataclass
class SetRuns:
    """One dev set's queries with both lists, and how to score a fused ranking of them."""
    name: str
    queries: dict[str, str]
    lists: dict[str, tuple[Scored, Scored]]
    hits: dict[Key, dict[str, Any]]
    score: Callable[[dict[str, list[dict[str, Any]]]], float]

    def evaluate(self, fusion: Fusion) -> float:
        fused = {q: [self.hits[k] for k in fusion(kw, vec, self.queries[q])]
                 for q, (kw, vec) in self.lists.items()}
        return self.score(fused)


def fetch(name: str, vault: bq.Vault, queries: dict[str, str], work: Path) -> tuple[
        dict[str, tuple[Scored, Scored]], dict[Key, dict[str, Any]]]:
    hits: dict[Key, dict[str, Any]] = {}
    per_mode = {}
    for mode in ("keyword", "vector"):
        per_mode[mode] = vault.search(queries, mode, work / "queries.jsonl")
        bq.log(f"{name}: {len(queries)} queries, {mode}")
    lists: dict[str, tuple[Scored, Scored]] = {}
    for q in queries:
        pair = []
        for mode in ("keyword", "vector"):
            lst: Scored = []
            for h in per_mode[mode].get(q, []):
                hits.setdefault(key(h), h)
                lst.append((key(h), float(h["score"])))
            pair.append(lst)
        lists[q] = (pair[0], pair[1])
    return lists, hits


def load(name: str, args: argparse.Namespace, ragdesk: str, work_root: Path) -> SetRuns:
    work = work_root / name
    work.mkdir(parents=True, exist_ok=True)
    vault = bq.Vault(ragdesk, work / "home")
    if name == "docqa":
        questions = [json.loads(line) for line in
                     (args.data_dir / "docqa" / "questions.jsonl").read_text().splitlines() if line.strip()]
        vault.build(args.corpus, "docqa corpus")
        queries = {str(q["id"]): q["question"] for q in questions}
        lists, hits = fetch(name, vault, queries, work)

        def score_qa(fused: dict[str, list[dict[str, Any]]]) -> float:
            return float(bq.docqa_scores({q: h[:10] for q, h in fused.items()}, questions)["page MRR@10"])
        return SetRuns(name, queries, lists, hits, score_qa)
    _, queries, qrels = bq.smart_vault(name, vault, args.data_dir, work)
    lists, hits = fetch(name, vault, queries, work)

    def score_ir(fused: dict[str, list[dict[str, Any]]]) -> float:
        return sum(bq.ndcg10(bq._doc_ids(fused.get(q, [])), qrels[q]) for q in queries) / len(queries)
    return SetRuns(name, queries, lists, hits, score_ir)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--work", type=Path, help="bench_quality's vault directory (reused, or built there)")
    ap.add_argument("--json", metavar="FILE", help="write every candidate's figures there")
    ap.add_argument("--ragdesk", default=str(bq.REPO / ".venv" / "bin" / "ragdesk"))
    ap.add_argument("--data-dir", type=Path, default=bq.DEFAULT_DATA)
    ap.add_argument("--corpus", type=Path, default=bq.DEFAULT_CORPUS)
    args = ap.parse_args(argv)
    ragdesk = shutil.which(args.ragdesk)
    if ragdesk is None:
        ap.error(f"--ragdesk: {args.ragdesk} is not an executable")
    work_root = args.work or Path(tempfile.mkdtemp(prefix="ragdesk-fusion-"))
    try:
        sets = [load(name, args, ragdesk, work_root) for name in bq.SETS]
    except bq.EvalError as exc:
        bq.log(f"error: {exc}")
        return 2
    finally:
        if args.work is None:
            shutil.rmtree(work_root, ignore_errors=True)
    figures = {label: {s.name: s.evaluate(f) for s in sets} for label, f in candidates().items()}
    plain = figures[PLAIN]
    rows = []
    for label, v in figures.items():
        margins = {n: v[n] - plain[n] for n in v}
        rows.append((statistics.fmean(v.values()), label, v, margins))
    rows.sort(key=lambda r: (-r[0], r[1]))
    names = [s.name for s in sets]
    head = ["candidate", *(f"{n} {METRIC[n]}" for n in names), "average", *(f"{n} − plain" for n in names)]
    print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
    for avg, label, v, m in rows:
        print(f"| {label} | " + " | ".join(f"{v[n]:.3f}" for n in names) + f" | {avg:.3f} | "
              + " | ".join(f"{m[n]:+.3f}" for n in names) + " |")
    passing = [r for r in rows if all(round(r[3][n], 3) >= MARGIN for n in names)]
    chosen = (passing or rows)[0]
    print()
    if passing:
        print(f"chosen: {chosen[1]} (best average {chosen[0]:.3f} of the {len(passing)} candidates "
              f"that beat plain RRF by >= {MARGIN} on every set)")
    else:
        print(f"no candidate beats plain RRF by >= {MARGIN} on every set; best average: "
              f"{chosen[1]} ({chosen[0]:.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"candidates": {label: {"figures": v, "average": avg, "margins": m} for avg, label, v, m in rows},
             "chosen": chosen[1], "passing": [r[1] for r in passing]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
