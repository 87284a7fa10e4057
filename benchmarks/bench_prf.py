"""Pseudo-relevance feedback on the vector side (Rocchio), measured on all three dev sets (issue 16).

    .venv/bin/python benchmarks/bench_prf.py --work DIR   # DIR: bench_quality.py's --work, built

For each question the hybrid search runs as shipped; the Rocchio variant then moves the
question's vector towards the mean of the top m fused passages' vectors (q + beta * centroid,
both unit length), searches the vectors again and fuses as shipped. In process, on the vaults
bench_quality.py built (cisi/, cacm/, docqa/ under DIR), scored as bench_quality.py scores:
CISI and CACM nDCG@10, docqa page MRR@10. Prints one line per set and the averages.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_quality as bq

from ragdesk.core import retrieval
from ragdesk.core.embedding.builtin import BuiltinEmbedder
from ragdesk.core.retrieval import Retriever
from ragdesk.core.store.sqlite import vault as vault_store

VARIANTS = {"as shipped": (0.0, 3), "beta 0.3 m 3": (0.3, 3), "beta 0.5 m 3": (0.5, 3),
            "beta 0.5 m 5": (0.5, 5), "beta 1.0 m 3": (1.0, 3)}


class Rocchio(Retriever):
    """The shipped retriever whose vector half searches with the fed-back question vector."""

    beta = 0.0
    m = 3

    def _dense(self, query: str, n: int, collection_ids: Sequence[int] | None
               ) -> tuple[list[tuple[int, float]], float, float]:
        assert self.embedder is not None
        qv = self.embedder.embed_query(query)
        if self.beta:
            keyword = self.store.keyword_search(query, n, collection_ids)
            vector = self.store.vector_search(qv, n, collection_ids)
            fused = retrieval.blend(retrieval.fuse_scores(
                keyword, [(c, 1 - d) for c, d in vector], self.options.vector_alpha), keyword, vector)
            rows = [self.store.document_vectors(c.document_id)[c.ordinal]  # type: ignore[index]
                    for c in self.store.chunks([c for c, _ in fused[: self.m]])]
            if rows:
                centroid = np.mean(rows, axis=0)
                moved = qv / np.linalg.norm(qv) + self.beta * centroid / np.linalg.norm(centroid)
                qv = (moved / np.linalg.norm(moved)).astype(np.float32)
        return self.store.vector_search(qv, n, collection_ids), 0.0, 0.0


def score(name: str, home: Path, data: Path, embedder: BuiltinEmbedder) -> dict[str, float]:
    store = vault_store.unlock(home, bq.PASSPHRASE, read_only=True)
    try:
        if name == "docqa":
            questions = [json.loads(line) for line in (data / "docqa" / "questions.jsonl").read_text()
                         .splitlines() if line.strip()]
            queries = {str(q["id"]): q["question"] for q in questions}
        else:
            _, raw, qrels = bq.load_smart(name, data / name)
            queries = {q: re.sub(r"\s+", " ", t) for q, t in raw.items()}
        out = {}
        for label, (beta, m) in VARIANTS.items():
            r = Rocchio(store, embedder)
            r.beta, r.m = beta, m
            hits: dict[str, list[dict[str, Any]]] = {
                q: [{"path": h.path, "page": h.page, "text": h.text} for h in r.search(t, k=10)]
                for q, t in queries.items()}
            if name == "docqa":
                out[label] = bq.docqa_scores(hits, questions)["page MRR@10"]
            else:
                out[label] = sum(bq.ndcg10(bq._doc_ids(hits[q]), qrels[q]) for q in queries) / len(queries)
        return out
    finally:
        store.lock()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--data-dir", type=Path, default=bq.DEFAULT_DATA)
    args = ap.parse_args()
    embedder = BuiltinEmbedder()
    results = {name: score(name, args.work / name / "home", args.data_dir, embedder) for name in bq.SETS}
    for name, figures in results.items():
        print(name, "  ".join(f"{k}: {v:.4f}" for k, v in figures.items()))
    for label in VARIANTS:
        print(f"average, {label}: {sum(r[label] for r in results.values()) / len(results):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
