"""The vault's keyed connections: one per thread, its transactions, and locking it again.

SQLite connections are not shared across threads, so each thread opens its own on first use
(keyfile.connect_working); all of them share the key, which is wiped from memory when the vault
is locked. The vault's parts (vault.py, fts.py, vec0.py) build on this class.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import sqlcipher3

from ragdesk.core.store.keys import KdfParams, wipe
from ragdesk.core.store.sqlite import keyfile
from ragdesk.core.store.sqlite.errors import sorted_errors
from ragdesk.core.store.sqlite.keyfile import DB_NAME, DEFAULT_CACHE_KIB
from ragdesk.core.store.sqlite.lock import NoLock, ProcessLock
from ragdesk.errors import VaultLocked


class Connections:
    """An unlocked vault's connections and transactions; `lock()` closes them and wipes the
    key. Parts that keep state derived from the connections extend `_reset_caches`."""

    def __init__(
        self,
        home: Path,
        key: bytearray,
        params: KdfParams,
        lock: ProcessLock | NoLock,
        cache_kib: int = DEFAULT_CACHE_KIB,
        read_only: bool = False,
    ) -> None:
        self.home = home
        self.read_only = read_only
        self.path = home / DB_NAME
        self._key = key
        self._params = params
        self._lock = lock
        self._cache_kib = cache_kib
        self._local = threading.local()
        self._connections: list[sqlcipher3.Connection] = []
        self._owners: dict[int, threading.Thread] = {}  # id(connection) -> the thread it serves
        self._connections_guard = threading.Lock()
        self._reset_caches()

    def _reset_caches(self) -> None:
        """Forget what was derived from the database (on creation and when locked)."""

    @property
    def is_locked(self) -> bool:
        return not self._key

    def _connect(self) -> sqlcipher3.Connection:
        if self.is_locked:
            raise VaultLocked("the vault is locked")
        self._close_orphans()
        conn = keyfile.connect_working(self.path, self._key, self.read_only, self._cache_kib)
        with self._connections_guard:
            self._connections.append(conn)
            self._owners[id(conn)] = threading.current_thread()
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended. Why: a server's worker threads
        come and go (anyio ends one idle for 10 s), each opens its own connection on first use,
        and nothing else closed it before `lock()`: in a 30-minute soak (bench_soak.py) the
        server held one more vault.db and -wal descriptor, with its page cache and a copy of
        the key, every half minute."""
        with self._connections_guard:
            ended = [c for c in self._connections
                     if not self._owners.get(id(c), threading.current_thread()).is_alive()]
            if not ended:
                return
            self._connections = [c for c in self._connections if c not in ended]
            self._owners = {id(c): self._owners[id(c)] for c in self._connections if id(c) in self._owners}
        for conn in ended:  # its thread is gone: nothing else uses it
            with contextlib.suppress(Exception):
                conn.close()

    @property
    def db(self) -> sqlcipher3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlcipher3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with sorted_errors():
            rows: list[tuple[Any, ...]] = self.db.execute(sql, params).fetchall()
            return rows

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlcipher3.Connection]:
        """This thread's connection in a write transaction: committed on success, else rolled
        back. Inside `batch()` it is a savepoint of the batch's transaction: its writes are
        undone alone if it fails, and committed with the batch."""
        db = self.db
        local = self._local
        depth = getattr(local, "depth", 0)
        with sorted_errors():
            if depth:
                name = f"nested{depth}"
                undo_to = len(local.after_commit)
                db.execute(f"SAVEPOINT {name}")
                local.depth = depth + 1
                try:
                    yield db
                except BaseException:
                    db.execute(f"ROLLBACK TO {name}")
                    db.execute(f"RELEASE {name}")
                    del local.after_commit[undo_to:]
                    raise
                finally:
                    local.depth = depth
                db.execute(f"RELEASE {name}")
                return
            db.execute("BEGIN IMMEDIATE")
            local.depth, local.after_commit = 1, []
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                local.depth = 0
                after, local.after_commit = local.after_commit, []
            try:
                db.execute("COMMIT")
            except BaseException:  # (a full disk): undone, and the connection usable again
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        for action in after:
            action()

    def _after_commit(self, action: Callable[[], None]) -> None:
        """Run `action` once the current transaction commits (never if it rolls back)."""
        self._local.after_commit.append(action)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Writes made inside commit together: one commit instead of one per call. Each call
        stays whole or absent (a failed one is undone alone); a crash before the end loses the
        batch's writes, never a part of one of them, nor anything committed before."""
        with self._transaction():
            yield

    def _check_key(self) -> None:
        self.db  # noqa: B018 - opening the connection reads the first page with the key

    def _forget(self) -> None:
        """Close connections and wipe the key, keeping the process lock (unlock retries)."""
        with self._connections_guard:
            for conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
            self._owners.clear()
        self._local = threading.local()
        self._reset_caches()
        wipe(self._key)
        self._key = bytearray()

    def close(self) -> None:
        self.lock()

    def lock(self) -> None:
        """Close every connection, wipe the key from memory and release the process lock."""
        if (self._connections or self._key) and not self.read_only:
            with contextlib.suppress(Exception):
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._forget()
        self._lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock()
