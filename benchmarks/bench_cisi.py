"""CISI through the real pipeline: indexing rate vs. the embedder alone, and retrieval quality.

    .venv/bin/python benchmarks/bench_cisi.py [--data-dir ../shared/data/cisi] [--rrf-k 60]
        [--corpus ../shared/corpus] [--repeat N]

1. Writes each CISI abstract (title + text) as one .txt file, creates a vault in a temp folder
   and runs `ragdesk index FOLDER` as a user would (a child process: interpreter start, model
   load, parser processes, embedding, encrypted writes all count).
2. In the same run, times the built-in embedder alone on the same 1460 texts, and prints the
   ratio end-to-end rate / embedder-only rate (target >= 0.85).
3. Ranks the documents for the 76 judged CISI queries with keyword-only (FTS5 BM25),
   vector-only and hybrid retrieval, and prints nDCG@10 and recall@100 for each
   (targets: hybrid >= 0.45 and never worse than the better of its parts).
4. With --corpus, indexes that folder too and prints the peak memory of the indexing processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cisi

REPO = Path(__file__).resolve().parents[1]
PASSPHRASE = "benchmark"


def make_vault(home: Path) -> None:
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault

    vault.create(home, PASSPHRASE, kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)).lock()


def run_index(home: Path, folder: Path) -> tuple[float, dict, int]:
    """Wall seconds, the --json summary, and the peak RSS (KiB) of the largest process of the
    `ragdesk index` tree (itself and its parser processes).

    Read as VmHWM from /proc every 20 ms, not from getrusage: a child's ru_maxrss counts the
    moment between fork and exec, when it still maps this process (embedder, vault and all),
    and showed 739-819 MiB for an indexer whose own peak is ~590 MiB."""
    env = dict(os.environ, RAGDESK_HOME=str(home), RAGDESK_PASSPHRASE=PASSPHRASE)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ragdesk", "index", "--json", str(folder)],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    reader = threading.Thread(target=lambda: out.extend(proc.communicate()), daemon=True)
    out: list[str] = []
    reader.start()
    while reader.is_alive():
        for pid in process_tree(proc.pid):
            hwm = status_kib(pid, "VmHWM")
            if hwm:
                peaks[pid] = max(peaks.get(pid, 0), hwm)
        reader.join(0.02)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out[0], out[1])
    peak = max(peaks.values(), default=0) or resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, json.loads(out[0]), peak


def process_tree(root: int) -> list[int]:
    """The process and its descendants, from /proc (empty where there is no /proc)."""
    found, i = [root], 0
    while i < len(found):
        try:
            for task in os.listdir(f"/proc/{found[i]}/task"):
                with open(f"/proc/{found[i]}/task/{task}/children", encoding="ascii") as f:
                    found.extend(int(c) for c in f.read().split())
        except OSError:
            pass
        i += 1
    return found if os.path.isdir(f"/proc/{root}") else []


def status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rrf-k", type=float, default=None)
    parser.add_argument("--vector-weight", type=float, default=None)
    parser.add_argument("--corpus", default=None, help="also index this folder and report peak memory")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="index N times (fresh vaults) and time the embedder alone on the chunks"
                             " N times, alternately, and compare the fastest of each: on a shared"
                             " machine the load comes and goes between the two halves")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="keep the CISI vault in DIR and reuse it (skips the indexing timing)")
    args = parser.parse_args()

    docs = cisi.load_docs(args.data_dir)
    queries = cisi.load_queries(args.data_dir)
    qrels = cisi.load_qrels(args.data_dir)
    judged = {q: t for q, t in queries.items() if q in qrels}

    with tempfile.TemporaryDirectory() as tmp:
        from ragdesk.core.embedding import BuiltinEmbedder

        home = Path(args.keep) if args.keep else Path(tmp) / "home"
        if not (home / "vault.db").exists():
            folder = Path(tmp) / "cisi"
            folder.mkdir()
            for doc_id, text in docs.items():
                (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")
            make_vault(home)

            wall, summary, peak_kib = run_index(home, folder)
            indexed = len(summary["indexed"])

            t = time.perf_counter()
            embedder = BuiltinEmbedder(spinning=True)  # as `ragdesk index` runs it
            load_s = time.perf_counter() - t
            texts = list(docs.values())
            embedder.embed(texts[:32])  # warm-up
            t = time.perf_counter()
            embedder.embed(texts)
            embed_s = time.perf_counter() - t
            embed_rate = len(texts) / embed_s

            # The pipeline embeds chunks (long abstracts are split, with overlap), not whole
            # documents cut at 256 tokens: time the embedder alone on those same chunk texts too.
            from ragdesk.core.store.sqlite import vault as vault_store

            with vault_store.unlock(home, PASSPHRASE) as store:
                chunk_texts = [c.text for d in store.documents() for c in store.document_chunks(d.id)]
            t = time.perf_counter()
            embedder.embed(chunk_texts)
            chunk_seconds = [time.perf_counter() - t]
            walls = [wall]
            for r in range(1, args.repeat):
                again = Path(tmp) / f"home{r}"
                make_vault(again)
                walls.append(run_index(again, folder)[0])
                t = time.perf_counter()
                embedder.embed(chunk_texts)
                chunk_seconds.append(time.perf_counter() - t)
            wall = min(walls)
            e2e_rate = indexed / wall
            chunk_rate = len(docs) / min(chunk_seconds)

            print(f"documents: {len(docs)}  indexed: {indexed}  failed: {len(summary['failed'])}"
                  f"  chunks: {summary['chunks']}")
            print(f"ragdesk index (child process, wall): {wall:.1f} s = {e2e_rate:.1f} docs/s;"
                  f" peak RSS {peak_kib / 1024:.0f} MiB")
            print(f"embedder alone: {embed_rate:.1f} docs/s (model load {load_s:.2f} s, not counted)")
            print(f"embedder alone on the pipeline's {len(chunk_texts)} chunks: {chunk_rate:.1f} docs/s")
            if args.repeat > 1:
                print(f"fastest of {args.repeat}, alternately: ragdesk index "
                      + " ".join(f"{w:.1f}" for w in walls) + " s; embedder alone on the chunks "
                      + " ".join(f"{c:.1f}" for c in chunk_seconds) + " s")
            print(f"end-to-end / embedder-only (same chunks) = {e2e_rate / chunk_rate:.3f}  (target >= 0.85)")
            print(f"end-to-end / embedder-only (whole docs, cut at 256 tokens) = {e2e_rate / embed_rate:.3f}")
        else:
            embedder = BuiltinEmbedder()

        from ragdesk.core.retrieval import Retriever, SearchOptions
        from ragdesk.core.store.sqlite import vault as vault_store

        store = vault_store.unlock(home, PASSPHRASE)
        try:
            options = {}
            if args.rrf_k is not None:
                options["rrf_k"] = args.rrf_k
            if args.vector_weight is not None:
                options["vector_weight"] = args.vector_weight
            retriever = Retriever(store, embedder, SearchOptions(**options))
            print(f"\n{'mode':8} {'nDCG@10':>8} {'recall@100':>11}   (CISI, {len(judged)} judged queries)")
            results = {}
            for mode in ("keyword", "vector", "hybrid"):
                rankings = {}
                latencies = []
                for qid, text in judged.items():
                    t = time.perf_counter()
                    hits = retriever.search(text, k=150, mode=mode)
                    latencies.append(time.perf_counter() - t)
                    # A document split into several chunks counts once, at its best rank.
                    rankings[qid] = list(dict.fromkeys(int(Path(h.path).stem) for h in hits))
                scores = cisi.evaluate(rankings, qrels)
                results[mode] = scores
                latencies.sort()
                print(f"{mode:8} {scores['ndcg@10']:8.3f} {scores['recall@100']:11.3f}"
                      f"   (median {1000 * latencies[len(latencies) // 2]:.1f} ms/query, k=150)")
            best_part = max(results["keyword"]["ndcg@10"], results["vector"]["ndcg@10"])
            print(f"hybrid - best part = {results['hybrid']['ndcg@10'] - best_part:+.3f}")
        finally:
            store.lock()

        if args.corpus:
            home2 = Path(tmp) / "home2"
            make_vault(home2)
            wall, summary, peak_kib = run_index(home2, Path(args.corpus))
            print(f"\ncorpus {args.corpus}: {len(summary['indexed'])} indexed,"
                  f" {len(summary['failed']) + len(summary['unsupported'])} reported,"
                  f" {summary['pages']} pages, {summary['chunks']} chunks in {wall:.1f} s;"
                  f" peak RSS of the largest indexing process {peak_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
