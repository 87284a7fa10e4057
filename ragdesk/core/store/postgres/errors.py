"""Which PostgreSQL failures are the environment's fault, and which are bugs.

An unreachable server, a full disk or a missing privilege becomes a StorageError with a message a
user can act on; anything else is raised as it is (a bug, logged with its traceback).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from ragdesk.errors import RagdeskError, StorageError


def environment_error(exc: psycopg.Error) -> RagdeskError | None:
    """Failures that are the environment's fault, as a clear message; None = a bug."""
    if isinstance(exc, psycopg.OperationalError):
        return StorageError(f"the database cannot be reached or refused the request ({exc})".strip())
    if isinstance(exc, psycopg.errors.DiskFull):
        return StorageError("the database server's disk is full (nothing was lost)")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StorageError(f"the database user lacks a privilege RagDesk needs ({exc})")
    return None


@contextlib.contextmanager
def sorted_errors() -> Iterator[None]:
    """Raise the environment's failures inside as StorageError, the rest unchanged."""
    try:
        yield
    except psycopg.Error as exc:
        mapped = environment_error(exc)
        if mapped is None:
            raise
        raise mapped from exc
