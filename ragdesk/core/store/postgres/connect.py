"""Opening the PostgreSQL store: the connection pool, the schema, the key, then the store.

Several `ragdesk serve` instances may share one database, so connections come from a
psycopg_pool ConnectionPool (one transaction per protocol call) and the schema is migrated under
an advisory lock (schema.py). A read-only open makes every session READ ONLY, applies no
migration and writes nothing, not even the audit entry.
"""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool

from ragdesk.core.store.keys import KdfParams
from ragdesk.core.store.postgres.errors import sorted_errors
from ragdesk.core.store.postgres.schema import check_schema, migrate
from ragdesk.core.store.postgres.seal import KDF_SETTING, unlock_key
from ragdesk.core.store.postgres.store import PostgresStore
from ragdesk.errors import RagdeskError, StorageError


def connect(
    url: str,
    passphrase: str,
    create: bool = True,
    kdf: KdfParams | None = None,
    max_connections: int = 8,
    vector_index: str = "hnsw",
    read_only: bool = False,
) -> PostgresStore:
    """Open (and, with `create`, initialise) the RagDesk schema in the database at `url`.

    `read_only`: every transaction is READ ONLY, no migration is applied and nothing is written
    (not even the audit entry); `ragdesk migrate` reads its source this way."""
    if read_only and create:
        raise ValueError("a read-only store cannot create the schema")
    if not passphrase:
        raise RagdeskError("the passphrase must not be empty")
    try:  # one direct attempt first: the server's own reason (refused, password, TLS), at once
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to the database: {exc}".strip()) from exc
    pool = ConnectionPool(url, min_size=1, max_size=max_connections, open=False,
                          name="ragdesk", timeout=30.0,
                          configure=_read_only_session if read_only else None)
    try:
        with sorted_errors():
            pool.open(wait=True, timeout=30.0)
    except Exception as exc:
        pool.close()
        if isinstance(exc, RagdeskError):
            raise
        raise StorageError(f"cannot connect to the database: {exc}") from exc
    try:
        with sorted_errors():
            if read_only:
                check_schema(pool)
            else:
                migrate(pool, create=create)
            key, params = unlock_key(pool, passphrase, kdf, create)
        store = PostgresStore(pool, key, params, url, vector_index=vector_index)
        if not read_only:
            store.audit("store opened", backend="postgresql")
        return store
    except BaseException:
        pool.close()
        raise


def holds_store(url: str) -> bool:
    """Whether the database at `url` already holds a RagDesk store (its key row), asked without
    the passphrase: `ragdesk init` and `migrate` refuse a weak one for a new store only."""
    try:
        with psycopg.connect(url, connect_timeout=10, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('settings')").fetchone() == (None,):
                return False
            row = conn.execute("SELECT 1 FROM settings WHERE key = %s", (KDF_SETTING,)).fetchone()
            return row is not None
    except psycopg.Error as exc:
        raise StorageError(f"cannot connect to the database: {exc}".strip()) from exc


def _read_only_session(conn: psycopg.Connection) -> None:
    conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    conn.commit()
