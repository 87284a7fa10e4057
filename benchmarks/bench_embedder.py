"""Speed and quality of the built-in embedder on CISI (targets: >= 80 docs/s, nDCG@10 >= 0.415).

    .venv/bin/python benchmarks/bench_embedder.py [--repeat 3] [--int8]
        [--reference-python /tmp/st-venv/bin/python] [--data-dir ../shared/data/cisi]

Embeds the 1460 CISI documents (title + text) with `BuiltinEmbedder`, times it (after a short
warm-up; model loading is timed apart), then ranks all documents for the 76 judged queries by exact
cosine in numpy and prints dense-only nDCG@10 and recall@100.

--reference-python runs the same measurement with sentence-transformers + PyTorch in that
interpreter (a scratch venv, never the project's), from the same model files, and prints the
builtin/reference throughput ratio and how closely the two sets of vectors agree.
--int8 also measures onnxruntime's dynamic int8 quantization of the same graph.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cisi


def rank(doc_ids: list[int], doc_vectors: Any, query_vectors: Any, k: int = 100) -> list[list[int]]:
    import numpy as np

    scores = np.asarray(query_vectors, dtype=np.float32) @ np.asarray(doc_vectors, dtype=np.float32).T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[doc_ids[j] for j in row] for row in top]


def quality(doc_ids: list[int], qids: list[int], doc_vectors: Any, query_vectors: Any,
            qrels: dict[int, set[int]]) -> dict[str, float]:
    rankings = dict(zip(qids, rank(doc_ids, doc_vectors, query_vectors), strict=True))
    return cisi.evaluate(rankings, qrels)


def timed_runs(embed: Any, texts: list[str], repeat: int) -> tuple[Any, list[float], list[float]]:
    """The vectors, and the wall-clock and process CPU seconds of each pass."""
    embed(texts[:32])  # warm-up: first-run allocations and thread start-up are not throughput
    seconds, cpu_seconds = [], []
    vectors = None
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), time.process_time()
        vectors = embed(texts)
        seconds.append(time.perf_counter() - start)
        cpu_seconds.append(time.process_time() - cpu_start)
    return vectors, seconds, cpu_seconds


def report(label: str, n_docs: int, seconds: list[float], cpu_seconds: list[float], load_s: float,
           q: dict[str, float]) -> float:
    """Prints one line per embedder; returns the median docs/s (wall clock)."""
    median = statistics.median(n_docs / s for s in seconds)
    per_cpu = statistics.median(n_docs / s for s in cpu_seconds)
    print(f"{label}\n  model load {load_s:.2f} s; {n_docs} docs in "
          + " ".join(f"{s:.1f}" for s in seconds)
          + f" s -> median {median:.1f} docs/s ({per_cpu:.1f} docs per CPU-second)\n"
          f"  nDCG@10 {q['ndcg@10']:.4f}  recall@100 {q['recall@100']:.4f}"
          f"  ({int(q['queries'])} judged queries)")
    return median


def reference_worker(args: argparse.Namespace) -> None:
    """Runs inside the reference interpreter: sentence-transformers + PyTorch, no ragdesk import."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    docs = cisi.load_docs(args.data_dir)
    queries = cisi.load_queries(args.data_dir)
    start = time.perf_counter()
    model = SentenceTransformer(args.model_dir, device="cpu")
    load_s = time.perf_counter() - start

    def embed(texts: list[str]) -> Any:
        return model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    doc_vectors, seconds, cpu_seconds = timed_runs(embed, list(docs.values()), args.repeat)
    query_vectors = embed(list(queries.values()))
    np.savez(args.out, docs=doc_vectors, queries=query_vectors)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "load_s": load_s,
                      "torch": torch.__version__,
                      "threads": torch.get_num_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="CISI folder (default: ../shared/data/cisi)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=1, help="timed passes over the corpus")
    parser.add_argument("--reference-python", default=None,
                        help="interpreter with torch + sentence-transformers for the reference run")
    parser.add_argument("--int8", action="store_true", help="also measure dynamic int8 quantization")
    parser.add_argument("--worker", choices=["reference"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "reference":
        reference_worker(args)
        return

    import numpy as np
    import onnxruntime

    from ragdesk.core.embedding import BuiltinEmbedder, builtin_model_dir

    docs = cisi.load_docs(args.data_dir)
    queries = cisi.load_queries(args.data_dir)
    qrels = cisi.load_qrels(args.data_dir)
    doc_ids, doc_texts = list(docs), list(docs.values())
    qids, query_texts = list(queries), list(queries.values())
    print(f"CISI: {len(docs)} docs, {len(queries)} queries, {len(qrels)} judged; "
          f"{os.cpu_count()} CPUs; onnxruntime {onnxruntime.__version__}; batch size {args.batch_size}")
    print("load average at the start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))

    start = time.perf_counter()
    embedder = BuiltinEmbedder(batch_size=args.batch_size, spinning=True)  # as `ragdesk index`
    load_s = time.perf_counter() - start
    doc_vectors, seconds, cpu_seconds = timed_runs(embedder.embed, doc_texts, args.repeat)
    query_vectors = embedder.embed(query_texts)
    builtin_rate = report("builtin fp32 (onnxruntime)", len(docs), seconds, cpu_seconds, load_s,
                          quality(doc_ids, qids, doc_vectors, query_vectors, qrels))

    if args.int8:
        int8_vectors = measure_int8(embedder, doc_ids, doc_texts, qids, query_texts, qrels, args)
        cos = np.sum(int8_vectors * doc_vectors, axis=1)
        print(f"int8 vs fp32 cosine over the docs: min {cos.min():.4f}  mean {cos.mean():.4f}")

    if args.reference_python:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "reference.npz"
            command = [args.reference_python, str(Path(__file__).resolve()), "--worker", "reference",
                       "--model-dir", str(builtin_model_dir()), "--batch-size", str(args.batch_size),
                       "--repeat", str(args.repeat), "--out", str(out)]
            if args.data_dir:
                command += ["--data-dir", str(args.data_dir)]
            env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
            result = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            info = json.loads(result.stdout.strip().splitlines()[-1])
            saved = np.load(out)
            ref_docs, ref_queries = saved["docs"], saved["queries"]
        ref_rate = report(f"reference sentence-transformers (torch {info['torch']}, "
                          f"{info['threads']} threads)", len(docs), info["seconds"],
                          info["cpu_seconds"], info["load_s"],
                          quality(doc_ids, qids, ref_docs, ref_queries, qrels))
        cos = np.sum(ref_docs * doc_vectors, axis=1)
        print(f"builtin vs reference cosine over the docs: min {cos.min():.6f}  mean {cos.mean():.6f}")
        print(f"throughput ratio builtin/reference: {builtin_rate / ref_rate:.2f}")
    print("load average at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


def measure_int8(embedder: Any, doc_ids: list[int], doc_texts: list[str], qids: list[int],
                 query_texts: list[str], qrels: dict[int, set[int]], args: argparse.Namespace) -> Any:
    """Quantize the built graph (MatMul weights to int8, dynamic activations) and measure it the
    same way. Benchmark-only: the embedder's session is swapped for the quantized one."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ragdesk.core.embedding.builtin import _build_bert_graph

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        int8 = Path(tmp) / "int8.onnx"
        fp32.write_bytes(_build_bert_graph(embedder.model_dir / "model.safetensors",
                                           embedder._config).SerializeToString())
        logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is not a result
        start = time.perf_counter()
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        embedder._session = ort.InferenceSession(str(int8), options, providers=["CPUExecutionProvider"])
        load_s = time.perf_counter() - start
    doc_vectors, seconds, cpu_seconds = timed_runs(embedder.embed, doc_texts, args.repeat)
    query_vectors = embedder.embed(query_texts)
    report("builtin int8 (dynamic, per-channel)", len(doc_texts), seconds, cpu_seconds, load_s,
           quality(doc_ids, qids, doc_vectors, query_vectors, qrels))
    return doc_vectors


if __name__ == "__main__":
    main()
