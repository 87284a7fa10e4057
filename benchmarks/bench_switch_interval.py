"""How late an asyncio loop wakes while threads share the interpreter lock with it, at several
switch intervals (`sys.setswitchinterval`): the reason the LAN server hands the lock on every
1 ms (server/answers.py, issue 21).

    .venv/bin/python benchmarks/bench_switch_interval.py [--threads 3] [--probes 300]

Each thread behaves like a search: ~10 ms of Python (holding the lock), then ~5 ms without it
(as SQLite and numpy run). The loop sleeps 5 ms again and again; its lag is how much later than
that it wakes. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time


def search_like(stop: threading.Event) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        spins = 0
        while time.perf_counter() - start < 0.010:
            spins += 1
        time.sleep(0.005)


async def lags(probes: int) -> list[float]:
    loop = asyncio.get_running_loop()
    out = []
    for _ in range(probes):
        start = loop.time()
        await asyncio.sleep(0.005)
        out.append((loop.time() - start - 0.005) * 1000)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--probes", type=int, default=300)
    args = parser.parse_args()
    for interval in (0.005, 0.001, 0.0005):
        sys.setswitchinterval(interval)
        stop = threading.Event()
        threads = [threading.Thread(target=search_like, args=(stop,)) for _ in range(args.threads)]
        for t in threads:
            t.start()
        measured = asyncio.run(lags(args.probes))
        stop.set()
        for t in threads:
            t.join()
        n = len(measured)
        print(f"switch interval {interval * 1000:.1f} ms, {args.threads} busy threads: loop lag "
              f"p50 {measured[n // 2]:.1f} ms, p95 {measured[int(n * 0.95)]:.1f} ms, "
              f"max {measured[-1]:.1f} ms")


if __name__ == "__main__":
    main()
