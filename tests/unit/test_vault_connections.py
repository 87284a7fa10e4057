"""The vault's per-thread connections do not outlive their threads: a server's worker threads
come and go for as long as it runs, and each connection holds two file descriptors (vault.db and
its -wal), a page cache and the key (found by benchmarks/bench_soak.py)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ragdesk.core.store.sqlite import vault as vault_store


def open_files(path: Path) -> int:
    """This process's descriptors open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:  # closed meanwhile (listdir's own descriptor)
            pass
    return count


def test_connections_of_ended_threads_are_closed(vault: vault_store.Vault) -> None:
    vault.status()  # this thread's connection stays: the thread lives on
    before = open_files(vault.path)
    for _ in range(30):  # worker threads, each used once and ended, as a thread pool's idle ones
        t = threading.Thread(target=vault.status)
        t.start()
        t.join()
    assert open_files(vault.path) <= before + 1, "one connection at most for the last ended thread"
    assert vault.status().documents == 0, "this thread's own connection still works"

    # A thread that is still alive keeps its connection and can go on using it.
    go, done = threading.Event(), threading.Event()
    results: list[int] = []

    def long_lived() -> None:
        results.append(vault.status().chunks)
        go.wait(10)
        results.append(vault.status().chunks)
        done.set()

    t = threading.Thread(target=long_lived)
    t.start()
    for _ in range(5):
        other = threading.Thread(target=vault.status)
        other.start()
        other.join()
    go.set()
    t.join()
    assert done.is_set() and results == [0, 0]
    vault.lock()
    assert open_files(vault.path) == 0
