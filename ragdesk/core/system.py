"""What the machine has left for RagDesk: available memory and this process's resident size,
and how many threads numpy's BLAS may use.

Memory is read by `doctor` (is there room for the vector index?) and by the LAN server's
`/ready` and metrics, from one place so both report the same figure.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path


def _proc_field(path: str, name: str) -> int | None:
    """A "Name:  123 kB" field of a /proc file, in bytes; None where it cannot be read."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(path).read_text(encoding="ascii").splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return None


def available_memory() -> int | None:
    """Bytes of memory available to new work, or None where it cannot be read."""
    found = _proc_field("/proc/meminfo", "MemAvailable")
    if found is not None:
        return found
    try:
        import psutil  # optional: present on some installs (and in the Windows/macOS bundles)
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def process_rss() -> int | None:
    """This process's resident memory in bytes, or None where it cannot be read."""
    return _proc_field("/proc/self/status", "VmRSS")


@functools.cache
def single_threaded_blas() -> None:
    """Let numpy's BLAS (OpenBLAS in the numpy wheels) use one thread in this process, once.

    Why: RagDesk's BLAS calls are small (a question against the held vectors: 3,000 x 384 in
    0.1 ms) and run beside other work (the event loop, the keyword search, onnxruntime's own
    threads). OpenBLAS's extra threads busy-wait after every call, taking the second core from
    all of that: on the LAN server at 40 questions a second they doubled the CPU time of an
    answer (35 -> 19 ms with one thread; benchmarks/bench_capacity.py, issue 21). A search over
    100k vectors uses the sketch (vectors.py), where one thread costs about a millisecond."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
