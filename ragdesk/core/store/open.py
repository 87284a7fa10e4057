"""Opening a store: the one entry point the command line, doctor, the GUI and the server use.

`where` is a vault folder (the encrypted SQLite vault, the default) or a `postgresql://` URL
(the team server). Callers never pick a backend module themselves, so a new backend or a change
in how one is unlocked lands here and nowhere else.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ragdesk.core.store.base import Store
from ragdesk.core.store.keys import KdfParams
from ragdesk.errors import RagdeskError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(where: str | Path) -> bool:
    """True for a PostgreSQL URL, False for a vault folder."""
    return isinstance(where, str) and where.startswith(POSTGRES_SCHEMES)


def backend_available(where: str | Path) -> str | None:
    """None if this installation can open a store at `where`, else the reason it cannot. Asked
    before the passphrase is, so that nobody types it for nothing."""
    if not is_database_url(where):
        return None  # the vault's engine is part of every installation
    try:  # importing, not just finding: psycopg without its libpq fails here too
        for module in ("psycopg", "psycopg_pool"):
            importlib.import_module(module)
    except ImportError:
        return "the PostgreSQL backend needs psycopg: pip install 'ragdesk[postgres]'"
    return None


def store_exists(where: str | Path) -> bool:
    """Whether a vault exists in the folder, or the database at a URL holds a RagDesk store
    (asked over one connection, without the passphrase; StorageError if it cannot be reached)."""
    if is_database_url(where):
        missing = backend_available(where)
        if missing is not None:
            raise RagdeskError(missing)
        from ragdesk.core.store import postgres

        return postgres.holds_store(str(where))
    from ragdesk.core.store.sqlite import keyfile

    return keyfile.exists(Path(where))


def open_store(
    where: str | Path,
    passphrase: str,
    *,
    create: bool = False,
    read_only: bool = False,
    kdf: KdfParams | None = None,
    vector_index: str = "hnsw",
) -> Store:
    """The store at `where`, unlocked with `passphrase`.

    `create`: make it when absent (a new vault, or the schema in an empty database); without it
    a missing vault is a clear error. `read_only`: nothing is written, not even an audit entry
    (`ragdesk migrate` reads its source this way). `kdf` sets the key derivation's cost of a new
    store; `vector_index` the PostgreSQL store's vector index ("hnsw" or "exact")."""
    if read_only and create:
        raise ValueError("a read-only store cannot be created")
    if is_database_url(where):
        missing = backend_available(where)
        if missing is not None:
            raise RagdeskError(missing)
        from ragdesk.core.store import postgres

        return postgres.connect(str(where), passphrase, create=create, kdf=kdf,
                                vector_index=vector_index, read_only=read_only)
    from ragdesk.core.store.sqlite import vault

    home = Path(where)
    if create and not vault.exists(home):
        return vault.create(home, passphrase, kdf=kdf)
    return vault.unlock(home, passphrase, read_only=read_only)
