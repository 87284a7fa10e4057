"""SQLite failures sorted into the environment's fault and bugs.

A wrong key, a busy or full disk, a read-only folder or a damaged file is not a bug: it becomes
a RagdeskError with a message that says what to do. Anything else is raised as it is, with its
traceback, because it is one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlcipher3

from ragdesk.errors import RagdeskError, StorageError, VaultInUse, WrongPassphrase


def environment_error(exc: sqlcipher3.Error) -> RagdeskError | None:
    """The clear message for a failure that is the environment's fault; None for a bug."""
    text = str(exc).lower()
    if "file is not a database" in text:
        return WrongPassphrase()
    if "database is locked" in text or "database is busy" in text:
        return VaultInUse("the vault is busy in another process; try again in a moment")
    if "disk is full" in text or "database or disk is full" in text:
        return StorageError("the disk is full; free some space and try again (nothing was lost)")
    if "readonly" in text or "read-only" in text:
        return StorageError("the vault's folder is read-only; RagDesk needs to write there")
    if "disk i/o error" in text or "unable to open" in text:
        return StorageError(f"the vault file cannot be read or written ({exc})")
    if "malformed" in text:
        return StorageError("the vault file is damaged; restore it from a backup")
    return None


@contextlib.contextmanager
def sorted_errors(unexpected: str | None = None) -> Iterator[None]:
    """Raise the environment's faults as RagdeskErrors. Any other SQLite error is raised as it
    is, or, given `unexpected`, as a StorageError that starts with it (where any failure can only
    come from the file, e.g. reading its first page)."""
    try:
        yield
    except sqlcipher3.Error as exc:
        mapped = environment_error(exc)
        if mapped is None and unexpected is not None:
            mapped = StorageError(f"{unexpected}: {exc}")
        if mapped is None:
            raise
        raise mapped from exc
