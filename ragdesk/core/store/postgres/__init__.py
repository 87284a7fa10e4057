"""The team-server backend: PostgreSQL + pgvector behind the same Store protocol as the vault.

    connect.py  opening: the connection pool, the schema, the key (`connect`)
    schema.py   the ordered, named migrations, applied under an advisory lock
    store.py    PostgresStore: the protocol's reads and writes, one transaction per call
    search.py   keyword search (BM25 over tsvector, as the vault ranks) and vector search (halfvec)
    seal.py     AES-GCM sealing of the original files and the server key, and the key check
    errors.py   which failures are the environment's (a clear message) and which are bugs
    health.py   what the doctor reads of a server: versions, TLS, data directory, index counts

Callers use `postgres.connect(url, passphrase, ...)` and `holds_store(url)` (through
`store.open`), and for diagnosis the schema's version and `health`; the rest is this package's
own.
"""

from ragdesk.core.store.postgres import health
from ragdesk.core.store.postgres.connect import connect, holds_store
from ragdesk.core.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION, TS_CONFIG, schema_version
from ragdesk.core.store.postgres.store import PostgresStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TS_CONFIG", "PostgresStore", "connect", "health",
           "holds_store", "schema_version"]
