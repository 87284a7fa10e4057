"""Retrieval speed at 100k and 1M chunks (issue 4), with chromadb side by side.

    .venv/bin/python benchmarks/bench_retrieval_speed.py [--sizes 100000,1000000]
        [--queries 200] [--keep DIR] [--chroma-python /tmp/chroma-venv/bin/python]

Per size N:
 1. Vectors that look like ours: the built-in embedder's vectors of the 1460 CISI abstracts give a
    mean and a covariance; N vectors are drawn from that Gaussian and L2-normalised.
 2. Chunk texts that cost what real text costs in FTS5: 60-150 words spliced from spans of the
    CISI abstracts (so the word distribution is Zipfian, stop words included), with a few rare
    words (names, numbers, codes) so the vocabulary keeps growing as it does in real collections.
 3. A vault built through the real store (`put_document`, 50-100 chunks per document, no
    originals), timed.
 4. A child process (so its peak RSS is the application's, not this script's) unlocks the vault,
    times the first search (vectors loaded into RAM), then runs the queries through
    `Retriever.search` with the real built-in embedder: p50/p95 of the whole query and of its
    parts, peak RSS, recall@10 of the vector search against an exact numpy scan. Then again with
    the vectors left on disk (`vector_memory_limit = 0`: sqlite-vec's vec0 KNN).
 5. With --chroma-python: chromadb (its own interpreter; it is not a RagDesk dependency) over the
    same vectors, PersistentClient in the work folder, cosine space, HNSW defaults, embeddings
    passed directly (no default embedding function, telemetry off).

Two query sets, each cycled to --queries: "cisi" = the 112 CISI queries verbatim (6-208 words,
half of them whole abstracts), "questions" = the first sentence of each, at most 30 words (what a
person types). --keep DIR keeps (and reuses) the vaults, vectors and chroma folders.

The top-level imports are the standard library and numpy only: the chroma side runs this file
with chroma's interpreter, which has no RagDesk.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PASSPHRASE = "benchmark passphrase"
DIM = 384
SEED = 20261126
K = 10
QUESTION_WORDS = 30
RARE_RATE = 0.03  # share of words replaced by rare tokens (names, numbers, codes)


# --- the corpus model: vectors and texts ------------------------------------------------------


def cisi_embeddings(workdir: Path) -> np.ndarray:
    """The built-in embedder's vectors of the CISI abstracts (cached in workdir)."""
    from ragdesk.core.embedding import BuiltinEmbedder

    sys.path.insert(0, str(HERE))
    import cisi

    cached = workdir / "cisi_embeddings.npy"
    if cached.is_file():
        return np.load(cached)
    docs = list(cisi.load_docs().values())
    t0 = time.perf_counter()
    vectors = BuiltinEmbedder().embed(docs)
    log(f"embedded {len(docs)} CISI abstracts in {time.perf_counter() - t0:.0f} s")
    np.save(cached, vectors)
    return vectors


def gaussian_vectors(reference: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n unit vectors drawn from the Gaussian with the reference vectors' mean and covariance."""
    mean = reference.mean(axis=0).astype(np.float64)
    cov = np.cov(reference, rowvar=False).astype(np.float64)
    chol = np.linalg.cholesky(cov + 1e-9 * np.eye(cov.shape[0]))
    rng = np.random.default_rng(seed)
    out = np.empty((n, reference.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        z = rng.standard_normal((stop - start, reference.shape[1]))
        block = (mean + z @ chol.T).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:stop] = block
    return out


class TextModel:
    """Chunk texts spliced from spans of the CISI abstracts, with rare words mixed in."""

    def __init__(self, seed: int) -> None:
        sys.path.insert(0, str(HERE))
        import cisi

        docs = cisi.load_docs()
        self.words = " ".join(docs.values()).split()
        self.titles = [t.split("\n")[0] for t in docs.values()]
        self.rng = np.random.default_rng(seed)
        syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "ber", "dan", "gor", "hel",
                     "jus", "kor", "lin", "mar", "nov", "par", "sen", "tor", "wal", "yen"]
        pick = np.random.default_rng(seed + 1).integers(0, len(syllables), size=(200_000, 3))
        self.rare = ["".join(syllables[i] for i in row) + (str(j % 97) if j % 5 == 0 else "")
                     for j, row in enumerate(pick)]

    def chunk(self) -> str:
        rng = self.rng
        length = int(rng.integers(60, 151))
        out: list[str] = []
        while len(out) < length:
            start = int(rng.integers(0, len(self.words) - 40))
            out.extend(self.words[start : start + int(rng.integers(8, 41))])
        del out[length:]
        for pos in np.nonzero(rng.random(length) < RARE_RATE)[0]:
            rank = (int(rng.zipf(1.2)) - 1) % len(self.rare)  # a few common, a long tail
            out[pos] = self.rare[rank] if rng.random() < 0.8 else str(int(rng.integers(0, 100_000)))
        return " ".join(out)

    def title(self) -> str:
        return self.titles[int(self.rng.integers(0, len(self.titles)))]


def question_sets(limit: int) -> dict[str, list[str]]:
    sys.path.insert(0, str(HERE))
    import cisi

    full = [q for q in cisi.load_queries().values() if q.strip()]
    short = []
    for q in full:
        first = re.split(r"(?<=[.?!])\s", q, maxsplit=1)[0]
        short.append(" ".join(first.split()[:QUESTION_WORDS]))

    def cycled(items: list[str]) -> list[str]:
        return [items[i % len(items)] for i in range(limit)]

    return {"cisi": cycled(full), "questions": cycled(short)}


# --- building a vault -------------------------------------------------------------------------


def without_memory_security() -> None:
    """Build shortcut: SQLCipher's cipher_memory_security (mlock + wipe of every allocation)
    makes inserts ~7x slower on this machine. The database file is the same without it; only
    this process's heap is not wiped. Queries are always measured with the vault's settings."""
    import sqlcipher3

    class Connection(sqlcipher3.Connection):
        def execute(self, sql: str, *args: Any) -> Any:  # type: ignore[override]
            if sql.replace(" ", "").lower() == "pragmacipher_memory_security=on":
                sql = "PRAGMA cipher_memory_security = OFF"
            return super().execute(sql, *args)

    plain = sqlcipher3.connect
    sqlcipher3.connect = lambda *a, **kw: plain(*a, factory=Connection, **kw)  # type: ignore[assignment]


def build_vault(sizedir: Path, vectors: np.ndarray, seed: int, fast: bool = False) -> dict[str, Any]:
    from ragdesk.core.embedding import BUILTIN_MODEL
    from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault as vault_store

    if fast:
        without_memory_security()

    home = sizedir / "vault"
    if home.exists():
        shutil.rmtree(home)
    n = len(vectors)
    texts = TextModel(seed)
    rng = np.random.default_rng(seed + 2)
    v = vault_store.create(home, PASSPHRASE, kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1))
    coll = v.collection("bench")
    assert coll is not None
    v.set_vector_space(VectorSpace(f"builtin:{BUILTIN_MODEL}", DIM))
    ids = np.zeros(n, dtype=np.int64)
    put_seconds = 0.0
    words = 0
    done = doc_no = 0
    t_start = time.perf_counter()
    next_report = 50_000
    while done < n:
        count = min(int(rng.integers(50, 101)), n - done)
        title = texts.title()
        drafts = []
        offset = 0
        for i in range(count):
            text = texts.chunk()
            words += text.count(" ") + 1
            heading = f"{title} > Part {i // 10 + 1}"
            drafts.append(ChunkDraft(text, i // 4 + 1, i // 4 + 1, offset, offset + len(text), heading))
            offset += len(text) + 1
        digest = hashlib.sha256("".join(d.text for d in drafts).encode()).hexdigest()
        info = DocumentInfo(coll.id, f"/bench/{doc_no:07d}.txt", title, "txt", offset, 0.0,
                            digest, pages=drafts[-1].page_end)
        t = time.perf_counter()
        doc = v.put_document(info, drafts, vectors[done : done + count], None)
        put_seconds += time.perf_counter() - t
        ids[done : done + count] = [c.id for c in v.document_chunks(doc.id)]
        done += count
        doc_no += 1
        if done >= next_report:
            log(f"  {done:,} chunks, {put_seconds:.0f} s in put_document "
                f"({done / put_seconds:,.0f} chunks/s), {time.perf_counter() - t_start:.0f} s wall")
            next_report += 50_000
    t = time.perf_counter()
    v.lock()  # checkpoints the WAL into the database file
    put_seconds += time.perf_counter() - t
    np.save(sizedir / "ids.npy", ids)
    stats = {
        "chunks": n,
        "documents": doc_no,
        "mean_words": words / n,
        "build_s": put_seconds,
        "db_bytes": (home / "vault.db").stat().st_size,
        "memory_security": not fast,
    }
    (sizedir / "build.json").write_text(json.dumps(stats, indent=2))
    return stats


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of the exact top-k by dot product, per query (float32 scan)."""
    out = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 32):
        sims = matrix @ queries[start : start + 32].T  # (n, 32)
        for j in range(sims.shape[1]):
            col = sims[:, j]
            top = np.argpartition(-col, k - 1)[:k]
            out[start + j] = top[np.argsort(-col[top], kind="stable")]
    return out


# --- the measuring child (RagDesk) ------------------------------------------------------------


def status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 50), "p95": pct(values, 95), "mean": float(np.mean(values))}


def run_queries(retriever: Any, questions: list[str], budget_s: float = float("inf"),
                min_queries: int = 0) -> dict[str, Any]:
    """p50/p95/mean of each part of `Retriever.search` over the questions; with `budget_s`, stop
    once that many seconds have gone (but not before `min_queries`)."""
    parts: dict[str, list[float]] = {"total": [], "embed": [], "keyword": [], "vector": [], "rest": []}
    start = time.perf_counter()
    for i, q in enumerate(questions):
        if i >= min_queries and time.perf_counter() - start > budget_s:
            break
        t = time.perf_counter()
        retriever.search(q, K)
        total = (time.perf_counter() - t) * 1000
        tm = retriever.last_timings
        parts["total"].append(total)
        parts["embed"].append(tm.embed_ms)
        parts["keyword"].append(tm.keyword_ms)
        parts["vector"].append(tm.vector_ms)
        # The question is embedded while the keyword index is searched (Retriever.search).
        parts["rest"].append(total - max(tm.keyword_ms, tm.embed_ms + tm.vector_ms))  # (side by side)
    out: dict[str, Any] = {name: summary(vals) for name, vals in parts.items()}
    out["each"] = parts
    out["embed_ms_each"] = parts["embed"]
    done = questions[:len(parts["total"])]
    out["n"] = len(done)
    out["wall_s"] = time.perf_counter() - start
    out["total_first_pass"] = summary(parts["total"][:len(set(done))])  # no word repeated from cache
    return out


def agreement(store: Any, retriever: Any, questions: list[str]) -> dict[str, float]:
    """How far the budgeted keyword search is from exact BM25 over every word: share of the
    exact top-100 keyword list kept, and of the hybrid top-10 made with it."""
    budget = store.keyword_budget
    kw = hy = 0.0
    times = []
    for q in questions:
        store.keyword_budget = budget
        fast_kw = {c for c, _ in store.keyword_search(q, 100)}
        fast_hy = {h.chunk_id for h in retriever.search(q, K)}
        store.keyword_budget = 1 << 62
        t = time.perf_counter()
        exact_kw = {c for c, _ in store.keyword_search(q, 100)}
        times.append((time.perf_counter() - t) * 1000)
        exact_hy = {h.chunk_id for h in retriever.search(q, K)}
        kw += len(fast_kw & exact_kw) / max(1, len(exact_kw))
        hy += len(fast_hy & exact_hy) / max(1, len(exact_hy))
    store.keyword_budget = budget
    return {"keyword_overlap_at_100": kw / len(questions), "hybrid_overlap_at_10": hy / len(questions),
            "exact_keyword_ms": summary(times)}


def recall(store: Any, qvecs: np.ndarray, truth_ids: np.ndarray, k: int) -> tuple[float, dict[str, float]]:
    found, times = 0, []
    for qv, truth in zip(qvecs, truth_ids, strict=True):
        t = time.perf_counter()
        got = store.vector_search(qv, k)
        times.append((time.perf_counter() - t) * 1000)
        found += len({c for c, _ in got[:K]} & set(truth.tolist()))
    return found / (len(qvecs) * K), summary(times)


def child_main(sizedir: Path, fallback_queries: int, agreement_queries: int) -> None:
    """Runs in a fresh interpreter: what the application would see. Prints one JSON line."""
    from ragdesk.core.embedding import BuiltinEmbedder
    from ragdesk.core.retrieval import Retriever
    from ragdesk.core.store.sqlite import vault as vault_store

    spec = json.loads((sizedir / "queries.json").read_text())
    truth = np.load(sizedir / "truth_ids.npy")  # (unique queries, K) chunk ids
    qvecs = np.load(sizedir / "query_vectors.npy")
    sets: dict[str, list[str]] = spec["sets"]
    result: dict[str, Any] = {}
    embedder = BuiltinEmbedder()
    embedder.embed_query("warm up the model")
    result["rss_before_unlock_kib"] = status_kib("VmRSS")

    v = vault_store.unlock(sizedir / "vault", PASSPHRASE)
    retriever = Retriever(v, embedder)
    first = sets["questions"][0]
    reset_peak()
    t = time.perf_counter()
    retriever.search(first, K)
    result["first_search_ms"] = (time.perf_counter() - t) * 1000
    result["first_search_vector_ms"] = retriever.last_timings.vector_ms
    result["first_search_keyword_ms"] = retriever.last_timings.keyword_ms
    index = v.vector_index()
    result["index_nbytes"] = index.nbytes if index is not None else 0
    result["index_size"] = index.size if index is not None else 0
    result["rss_after_load_kib"] = status_kib("VmRSS")
    result["hwm_load_kib"] = status_kib("VmHWM")
    for q in sets["questions"][1:11]:  # warm-up, not counted
        retriever.search(q, K)
    peak_reset = reset_peak()
    for name, questions in sets.items():
        result[name] = run_queries(retriever, questions)
    result["hwm_query_kib"] = status_kib("VmHWM")
    result["hwm_query_is_window"] = peak_reset
    result["rss_after_queries_kib"] = status_kib("VmRSS")
    result["recall_memory"], result["vector_only_memory_k10"] = recall(v, qvecs, truth, K)
    _, result["vector_only_memory_k100"] = recall(v, qvecs, truth, 100)
    if agreement_queries and hasattr(v, "keyword_budget"):
        for name in sets:
            distinct = list(dict.fromkeys(sets[name]))[:agreement_queries]
            result[f"agreement_{name}"] = agreement(v, retriever, distinct)
    v.lock()
    del v, retriever, index
    gc.collect()

    if not fallback_queries:  # --fallback-queries 0: the in-RAM figures only
        print(json.dumps(result))
        return
    # The same vault with the vectors left on disk: sqlite-vec's vec0 KNN.
    v = vault_store.unlock(sizedir / "vault", PASSPHRASE)
    v.vector_memory_limit = 0
    retriever = Retriever(v, embedder)
    questions = sets["cisi"][:fallback_queries]
    retriever.search(questions[0], K)
    result["vec0_cisi"] = run_queries(retriever, questions)
    result["recall_vec0"], result["vector_only_vec0_k10"] = recall(v, qvecs, truth, K)
    _, result["vector_only_vec0_k100"] = recall(v, qvecs[:50], truth[:50], 100)
    assert v.vector_index() is None, "the fallback run must not hold vectors in RAM"
    v.lock()
    print(json.dumps(result))


# --- the chroma child -------------------------------------------------------------------------


def chroma_main(sizedir: Path) -> None:
    """Runs under chroma's interpreter (numpy + chromadb only). Prints one JSON line."""
    os.environ["ANONYMIZED_TELEMETRY"] = "False"
    import chromadb
    from chromadb.config import Settings

    qvecs = np.load(sizedir / "query_vectors.npy")
    truth_rows = np.load(sizedir / "truth_rows.npy")
    vectors = np.load(sizedir / "vectors.npy", mmap_mode="r")
    n = len(vectors)
    folder = sizedir / "chroma"
    result: dict[str, Any] = {"chromadb": chromadb.__version__}
    client = chromadb.PersistentClient(path=str(folder), settings=Settings(anonymized_telemetry=False))
    built = (sizedir / "chroma.json")
    if built.is_file():
        collection = client.get_collection("bench", embedding_function=None)
        result.update(json.loads(built.read_text()))
    else:
        with __import__("contextlib").suppress(Exception):
            client.delete_collection("bench")
        collection = client.create_collection(
            "bench", metadata={"hnsw:space": "cosine"}, embedding_function=None
        )
        batch = min(client.get_max_batch_size(), 5000)
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            stop = min(n, start + batch)
            collection.add(ids=[str(i) for i in range(start, stop)],
                           embeddings=np.ascontiguousarray(vectors[start:stop]))
            if (stop // batch) % 20 == 0:
                print(f"  chroma: {stop:,} added, {time.perf_counter() - t0:.0f} s",
                      file=sys.stderr, flush=True)
        build = {"build_s": time.perf_counter() - t0,
                 "disk_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())}
        built.write_text(json.dumps(build))
        result.update(build)
    assert collection.count() == n, (collection.count(), n)
    for q in qvecs[:10]:  # warm-up: chroma loads its index on first query
        collection.query(query_embeddings=[q.tolist()], n_results=K)
    times, found = [], 0
    order = json.loads((sizedir / "queries.json").read_text())["vector_order"]
    for i in order:
        t = time.perf_counter()
        res = collection.query(query_embeddings=[qvecs[i].tolist()], n_results=K, include=["distances"])
        times.append((time.perf_counter() - t) * 1000)
    for i in range(len(qvecs)):
        res = collection.query(query_embeddings=[qvecs[i].tolist()], n_results=K, include=["distances"])
        found += len({int(x) for x in res["ids"][0]} & set(truth_rows[i].tolist()))
    result["query_ms_each"] = times
    result["recall"] = found / (len(qvecs) * K)
    with open("/proc/self/status", encoding="ascii") as f:
        result["hwm_kib"] = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps(result))


# --- the parent -------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_child(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv)}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure_size(n: int, workdir: Path, reference: np.ndarray, sets: dict[str, list[str]],
                 chroma_python: str | None, fallback_queries: int,
                 build_only: bool = False, fast_build: bool = False,
                 agreement_queries: int = 0) -> dict[str, Any]:
    from ragdesk.core.embedding import BuiltinEmbedder

    sizedir = workdir / f"n{n}"
    sizedir.mkdir(parents=True, exist_ok=True)
    vectors_file = sizedir / "vectors.npy"
    if vectors_file.is_file():
        vectors = np.load(vectors_file)
    else:
        vectors = gaussian_vectors(reference, n, SEED + n)
        np.save(vectors_file, vectors)
    if (sizedir / "build.json").is_file() and (sizedir / "ids.npy").is_file():
        build = json.loads((sizedir / "build.json").read_text())
        log(f"n={n:,}: reusing the vault in {sizedir}")
    else:
        log(f"n={n:,}: building the vault in {sizedir}")
        build = build_vault(sizedir, vectors, SEED + n, fast=fast_build)
    ids = np.load(sizedir / "ids.npy")
    if build_only:
        return {"n": n, "build": build}

    # Ground truth: exact float32 scan over the same vectors, for every distinct question.
    unique = list(dict.fromkeys(q for qs in sets.values() for q in qs))
    qvecs = BuiltinEmbedder().embed(unique)
    rows = exact_top(vectors, qvecs, K)
    np.save(sizedir / "query_vectors.npy", qvecs)
    np.save(sizedir / "truth_rows.npy", rows)
    np.save(sizedir / "truth_ids.npy", ids[rows])
    position = {q: i for i, q in enumerate(unique)}
    vector_order = [position[q] for q in sets["cisi"]]
    (sizedir / "queries.json").write_text(json.dumps({"sets": sets, "vector_order": vector_order}))
    del vectors
    gc.collect()

    log(f"n={n:,}: measuring RagDesk")
    ours = run_child([sys.executable, __file__, "--child", str(sizedir),
                      "--fallback-queries", str(fallback_queries),
                      "--agreement-queries", str(agreement_queries)])
    theirs: dict[str, Any] | None = None
    if chroma_python:
        log(f"n={n:,}: measuring chromadb (building its index the first time)")
        env = dict(os.environ, ANONYMIZED_TELEMETRY="False")
        theirs = run_child([chroma_python, __file__, "--chroma", str(sizedir)], env=env)
        embed_each = ours["cisi"]["embed_ms_each"]
        # Both children timed the same CISI questions in the same order (queries.json).
        with_embed = [a + b for a, b in zip(theirs["query_ms_each"], embed_each, strict=True)]
        theirs["query"] = summary(theirs["query_ms_each"])
        theirs["query_with_embed"] = summary(with_embed)
    return {"n": n, "build": build, "ours": ours, "chroma": theirs}


def fmt(s: dict[str, float]) -> str:
    return f"{s['p50']:7.1f} / {s['p95']:7.1f}"


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    lines = []
    cols = [f"{r['n']:,} chunks" for r in results]
    width = 24

    def row(label: str, values: list[str]) -> None:
        lines.append(f"| {label:<52} | " + " | ".join(f"{v:>{width}}" for v in values) + " |")

    row("p50 / p95 ms (targets: p95 <= 50 ms at 100k, <= 200 ms at 1M)", cols)
    lines.append("|" + "-" * 54 + "|" + "|".join("-" * (width + 2) for _ in cols) + "|")
    for name, label in (("questions", f"questions (first sentence, <= {QUESTION_WORDS} words)"),
                        ("cisi", "CISI queries verbatim (avg 76 words)")):
        row(f"hybrid search, {label}", [fmt(r["ours"][name]["total"]) for r in results])
        row("  first pass (each query once, nothing cached)",
            [fmt(r["ours"][name]["total_first_pass"]) for r in results])
        for part, what in (("embed", "embed part (alongside keyword)"), ("keyword", "keyword part"),
                           ("vector", "vector part"), ("rest", "rest: fusion, fetching hits")):
            row(f"  {what}", [fmt(r["ours"][name][part]) for r in results])
    row("vector search alone, in RAM, k=10", [fmt(r["ours"]["vector_only_memory_k10"]) for r in results])
    row("vector search alone, in RAM, k=100", [fmt(r["ours"]["vector_only_memory_k100"]) for r in results])
    row("recall@10 in RAM vs exact numpy scan", [f"{r['ours']['recall_memory']:.3f}" for r in results])
    for name in ("questions", "cisi"):
        key = f"agreement_{name}"
        if all(key in r["ours"] for r in results):
            row(f"{name}: exact BM25 (all words) keyword search",
                [fmt(r["ours"][key]["exact_keyword_ms"]) for r in results])
            row(f"{name}: budgeted keyword top-100 shared with exact",
                [f"{r['ours'][key]['keyword_overlap_at_100']:.2f}" for r in results])
            row(f"{name}: hybrid top-10 shared with exact-BM25 hybrid",
                [f"{r['ours'][key]['hybrid_overlap_at_10']:.2f}" for r in results])
    if all("vec0_cisi" in r["ours"] for r in results):
        row("vec0 fallback: hybrid search, CISI queries",
            [fmt(r["ours"]["vec0_cisi"]["total"]) for r in results])
        row("vec0 fallback: vector part (k=100)", [fmt(r["ours"]["vec0_cisi"]["vector"]) for r in results])
        row("vec0 fallback: vector search alone, k=10",
            [fmt(r["ours"]["vector_only_vec0_k10"]) for r in results])
        row("vec0 fallback: recall@10 vs exact", [f"{r['ours']['recall_vec0']:.3f}" for r in results])
    if any(r.get("chroma") for r in results):
        ch = [r["chroma"] or {} for r in results]
        na = "not run"
        row("chromadb vector query, k=10", [fmt(c["query"]) if c else na for c in ch])
        row("chromadb vector query + the same query embedding",
            [fmt(c["query_with_embed"]) if c else na for c in ch])
        row("chromadb recall@10 vs exact", [f"{c['recall']:.3f}" if c else na for c in ch])
        row("ratio RagDesk/chroma, vector only (p50 / p95)", [
            f"{r['ours']['vector_only_memory_k10']['p50'] / c['query']['p50']:.2f} / "
            f"{r['ours']['vector_only_memory_k10']['p95'] / c['query']['p95']:.2f}" if c else na
            for r, c in zip(results, ch, strict=True)])
        row("ratio RagDesk hybrid / chroma+embed, CISI (p50 / p95)", [
            f"{r['ours']['cisi']['total']['p50'] / c['query_with_embed']['p50']:.2f} / "
            f"{r['ours']['cisi']['total']['p95'] / c['query_with_embed']['p95']:.2f}" if c else na
            for r, c in zip(results, ch, strict=True)])
        row("chromadb build time, s per 100k", [
            f"{c['build_s'] / r['n'] * 1e5:.0f}" if c else na for r, c in zip(results, ch, strict=True)])
        row("chromadb disk size per 100k", [
            mib(c["disk_bytes"] / r["n"] * 1e5) if c else na for r, c in zip(results, ch, strict=True)])
        row("chromadb peak RSS (querying)", [mib(c["hwm_kib"] * 1024) if c else na for c in ch])
    row("build time (put_document), s per 100k chunks",
        [f"{r['build']['build_s'] / r['n'] * 1e5:.0f}"
         + ("" if r["build"].get("memory_security", True) else " (a)") for r in results])
    row("vault size per 100k chunks (no originals)",
        [mib(r["build"]["db_bytes"] / r["n"] * 1e5) for r in results])
    row("first search after unlock (loads vectors), ms",
        [f"{r['ours']['first_search_ms']:.0f}" for r in results])
    row("  of which vector part (the load), ms",
        [f"{r['ours']['first_search_vector_ms']:.0f}" for r in results])
    row("vectors held in RAM (vector_index().nbytes)", [mib(r["ours"]["index_nbytes"]) for r in results])
    row("RSS before unlock (python + embedder)",
        [mib(r["ours"]["rss_before_unlock_kib"] * 1024) for r in results])
    row("peak RSS while loading vectors", [mib(r["ours"]["hwm_load_kib"] * 1024) for r in results])
    row("peak RSS while querying", [mib(r["ours"]["hwm_query_kib"] * 1024) for r in results])
    if not all(r["build"].get("memory_security", True) for r in results):
        lines.append("")
        lines.append("(a) built with --fast-build: SQLCipher's cipher_memory_security off while building"
                     " (same file; queries always run with the vault's own settings)")
    if not any(r.get("chroma") for r in results):
        lines.append("")
        lines.append("chromadb: not measured (pass --chroma-python PATH, an interpreter with chromadb)")
    head = (f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, queries per set: {args.queries}, "
            f"vec0 fallback queries: {args.fallback_queries}, mean chunk words: "
            + ", ".join(f"{r['build']['mean_words']:.0f}" for r in results))
    return head + "\n\n" + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=200, help="queries per set (cycled)")
    parser.add_argument("--fallback-queries", type=int, default=200,
                        help="CISI queries run with the vectors on disk (vec0)")
    parser.add_argument("--agreement-queries", type=int, default=40,
                        help="distinct queries per set compared with exact BM25 (slow at 1M)")
    parser.add_argument("--keep", type=Path, help="keep the vaults etc. here and reuse them")
    parser.add_argument("--chroma-python", help="an interpreter with chromadb (not a RagDesk dependency)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--build-only", action="store_true",
                        help="build (or reuse) the vaults, measure nothing")
    parser.add_argument("--fast-build", action="store_true",
                        help="build without SQLCipher's memory security (~7x faster inserts; same file)")
    parser.add_argument("--report", type=Path, help="print the table again from a --json file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--chroma", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.fallback_queries, args.agreement_queries)
        return
    if args.chroma:
        chroma_main(args.chroma)
        return
    if args.report:
        print(report(json.loads(args.report.read_text()), args))
        return

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not args.chroma_python:
        log("note: no --chroma-python given; chromadb is skipped")
    with tempfile.TemporaryDirectory(prefix="ragdesk-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        reference = cisi_embeddings(workdir)
        sets = question_sets(args.queries)
        results = [measure_size(n, workdir, reference, sets, args.chroma_python, args.fallback_queries,
                                args.build_only, args.fast_build, args.agreement_queries)
                   for n in sizes]
    if args.build_only:
        for r in results:
            print(f"{r['n']:,} chunks: {r['build']}")
        return
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(report(results, args))


if __name__ == "__main__":
    main()
