"""What the doctor reads of a PostgreSQL team server, as records: the connection's parameters,
the server's and pgvector's versions, where the data directory is, and the search index's counts.

The PostgreSQL counterpart of sqlite/inspect.py: read-only queries over one autocommit psycopg
connection, opened without the store (no pool, no key, no schema check), so a server without a
RagDesk schema, or one the passphrase does not open, can still be looked at. What the findings
mean (pass, warn, fail) and what to do about them is the doctor's to say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import psycopg
from psycopg.rows import TupleRow

from ragdesk.core.store.postgres.schema import scalar
from ragdesk.errors import StorageError

# What psycopg.connect() returns without a row factory: rows are plain tuples.
Connection: TypeAlias = psycopg.Connection[TupleRow]


@dataclass(frozen=True)
class Link:
    """How the connection reached the server."""

    host: str  # a host name, or the folder of a Unix socket
    port: int
    dbname: str
    user: str
    sslmode: str  # as the URL asks; libpq's default "prefer" when it does not say
    tls_in_use: bool

    @property
    def unix_socket(self) -> bool:
        return self.host.startswith("/")


@dataclass(frozen=True)
class ServerVersion:
    text: str  # as the server reports it, e.g. "18.3"
    number: int  # e.g. 180003, for comparisons


@dataclass(frozen=True)
class Pgvector:
    """pgvector's version created in this database (`installed`), else the one the server
    offers to CREATE EXTENSION (`available`); both None when the server has no pgvector."""

    installed: str | None
    available: str | None


@dataclass(frozen=True)
class IndexCounts:
    vectors: int | None  # None: no vector table yet (no vector space chosen)
    mismatched_documents: int  # documents whose recorded chunk count disagrees with their chunks


def connect(url: str, timeout: float) -> Connection:
    """An autocommit connection to `url`, waiting at most `timeout` seconds (at least one).
    StorageError with the first line of the server's or libpq's reason if it fails."""
    try:
        return psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True)
    except psycopg.Error as exc:
        text = str(exc).strip()
        raise StorageError(text.splitlines()[0] if text else type(exc).__name__) from exc


def link(conn: Connection) -> Link:
    info = conn.info
    return Link(host=info.host, port=info.port, dbname=info.dbname, user=info.user,
                sslmode=info.get_parameters().get("sslmode", "prefer"),  # only non-defaults listed
                tls_in_use=bool(conn.pgconn.ssl_in_use))


def server_version(conn: Connection) -> ServerVersion:
    return ServerVersion(text=str(scalar(conn, "SHOW server_version")),
                         number=int(conn.info.server_version))


def pgvector(conn: Connection) -> Pgvector:
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
    if row is not None:
        return Pgvector(installed=str(row[0]), available=None)
    offered = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return Pgvector(installed=None, available=None if offered is None else str(offered[0]))


def data_directory(conn: Connection) -> str:
    """The server's data directory. StorageError if this user may not see it (that takes a
    superuser or the pg_read_all_settings role)."""
    try:
        return str(scalar(conn, "SHOW data_directory"))
    except psycopg.Error as exc:
        raise StorageError(str(exc).strip()) from exc


def index_counts(conn: Connection) -> IndexCounts:
    """The vectors, and the documents whose chunk count does not hold, of the RagDesk schema
    on the connection's search path."""
    vectors = None
    if scalar(conn, "SELECT to_regclass('chunk_vectors') IS NOT NULL"):
        vectors = int(scalar(conn, "SELECT count(*) FROM chunk_vectors"))
    mismatched = int(scalar(
        conn, "SELECT count(*) FROM documents d WHERE d.chunk_count !="
              " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"))
    return IndexCounts(vectors=vectors, mismatched_documents=mismatched)
