"""How long unlocking a vault takes with the default Argon2id cost (target: 0.3-1.5 s).

    .venv/bin/python benchmarks/bench_unlock.py [--runs 5]

Creates a vault in a temporary folder with the default key-derivation parameters, then unlocks
it several times and prints each time and the median.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ragdesk.core.store.keys import KdfParams
from ragdesk.core.store.sqlite import vault as vault_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        params = KdfParams.fresh()
        vault_store.create(home, "benchmark passphrase", kdf=params).lock()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            v = vault_store.unlock(home, "benchmark passphrase")
            times.append(time.perf_counter() - start)
            v.lock()
    print(
        f"argon2id memory={params.memory_kib} KiB iterations={params.iterations}"
        f" lanes={params.lanes}"
    )
    print("unlock seconds: " + " ".join(f"{t:.3f}" for t in times))
    print(f"median {statistics.median(times):.3f} s, max {max(times):.3f} s (target 0.3-1.5 s)")


if __name__ == "__main__":
    main()
