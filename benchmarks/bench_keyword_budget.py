"""What the keyword budget costs in quality: CISI nDCG@10 with the budget scaled to the collection.

    .venv/bin/python benchmarks/bench_keyword_budget.py [--fractions 1,0.05,0.02,0.005]

The vault's keyword search leaves the commonest query words out of the BM25 ranking when their
chunks add up to more than `Vault.keyword_budget` (2000; the PostgreSQL store's too) and the vault
holds more chunks than that (issue 4: an exact ranking cost 1-3 s at 100k chunks). CISI has only
1460 abstracts, so the budget never bites there; setting it to a fraction of the collection shows
what happens in a vault where the budget's chunks are that fraction: 2% ~ a 100k-chunk vault,
0.2% ~ 1M. Each abstract is one chunk, embedded with the built-in embedder; queries are the 76
judged CISI queries; retrieval is the application's own `Retriever` (its default fusion).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cisi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fractions", default="1,0.2,0.05,0.02,0.005")
    args = parser.parse_args()

    from ragdesk.core.embedding import BuiltinEmbedder
    from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
    from ragdesk.core.retrieval import Retriever
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault as vault_store

    docs, queries, qrels = cisi.load_docs(), cisi.load_queries(), cisi.load_qrels()
    judged = [q for q in sorted(qrels) if qrels[q]]
    embedder = BuiltinEmbedder()
    with tempfile.TemporaryDirectory() as tmp:
        cheap_kdf = KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)
        v = vault_store.create(Path(tmp), "benchmark", kdf=cheap_kdf)
        try:
            coll = v.collection("cisi")
            assert coll is not None
            v.set_vector_space(VectorSpace(embedder.name, embedder.dimension))
            texts = list(docs.values())
            vectors = embedder.embed(texts)
            for i, (doc_id, text) in enumerate(docs.items()):
                info = DocumentInfo(coll.id, f"/{doc_id}", str(doc_id), "txt", len(text), 0.0,
                                    hashlib.sha256(text.encode()).hexdigest(), pages=1)
                v.put_document(info, [ChunkDraft(text, 1, 1, 0, len(text))], vectors[i : i + 1], None)
            retriever = Retriever(v, embedder)
            print(f"CISI: {len(docs)} abstracts, {len(judged)} judged queries; nDCG@10")
            print(f"{'budget':>22} | keyword | hybrid | vector")
            vector = None
            for fraction in (float(f) for f in args.fractions.split(",")):
                v.keyword_budget = max(1, int(len(docs) * fraction))
                scores = {}
                for mode in ("keyword", "hybrid") + (("vector",) if vector is None else ()):
                    rankings = {
                        q: [int(Path(h.path).name) for h in retriever.search(queries[q], 10, mode=mode)]
                        for q in judged
                    }
                    scores[mode] = cisi.evaluate(rankings, qrels)["ndcg@10"]
                vector = scores.get("vector", vector)
                label = f"{fraction:.1%} = {v.keyword_budget} chunks"
                print(f"{label:>22} | {scores['keyword']:7.3f} | {scores['hybrid']:6.3f} | {vector:6.3f}")
        finally:
            v.lock()


if __name__ == "__main__":
    main()
