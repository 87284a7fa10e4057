"""The vault's process lock: only one process at a time opens a vault for writing.

vault.lock beside the database holds an exclusive advisory lock for as long as the vault is
open; the operating system releases it if the process dies, so a crash never leaves a vault
that cannot be opened. Readers that must work beside the owner (backups, the doctor, a
read-only open) take no lock at all: SQLite's WAL mode keeps them consistent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ragdesk import paths
from ragdesk.errors import VaultInUse

LOCK_NAME = "vault.lock"


class ProcessLock:
    """An exclusive advisory lock on `path`, released by the OS if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # 0600 like every file of the vault (paths.py); held for the vault's lifetime
        self._file = open(paths.open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), "a+b")  # noqa: SIM115
        try:
            self._acquire()
        except OSError:
            self._file.close()
            raise VaultInUse(
                "the vault is in use by another RagDesk process; close it there first"
            ) from None

    def _acquire(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds only
            import msvcrt

            msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._file.closed:
            return
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()


class NoLock:
    """What a read-only vault holds instead: no lock (like backups), so the owner may keep
    writing."""

    def release(self) -> None:
        pass
