"""A process that opens a vault keeps numpy's BLAS to one thread (core/system.py says why:
OpenBLAS's extra threads busy-wait after each call and took the second core from the LAN
server's answers; benchmarks/bench_capacity.py measures it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import PASSPHRASE

SCRIPT = """
import json, sys
from pathlib import Path
from threadpoolctl import threadpool_info
import numpy  # loads OpenBLAS with its default thread count
before = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
from ragdesk.app import Services
from ragdesk.core.store.sqlite import vault as vault_store
from tests.conftest import fast_kdf
home = Path(sys.argv[1])
store = vault_store.create(home, sys.argv[2], kdf=fast_kdf())
Services(store=store, home=home).close()
after = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
print(json.dumps({"before": before, "after": after}))
"""


def test_opening_a_vault_leaves_blas_one_thread(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "vault"), PASSPHRASE],
        capture_output=True, text=True, check=True, timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OPENBLAS_NUM_THREADS": "2"},
    )
    threads = json.loads(out.stdout.strip().splitlines()[-1])
    assert threads["before"] and all(n == 2 for n in threads["before"])  # numpy's BLAS was threaded
    assert threads["after"] == [1] * len(threads["before"])
