"""Read-only, lock-free access to an encrypted vault file, and its health report.

Backups and the doctor must work while another process (the GUI indexing, `ragdesk serve`) has
the vault open and holds vault.lock. They never take that lock: they open the database file
read-only with the key derived from the sidecar. SQLite's WAL mode lets a reader in another
process see one consistent snapshot per read transaction while the writer carries on.

`health()` runs the checks a backup is verified with and the doctor reports:
`PRAGMA cipher_integrity_check` (every page's HMAC), `PRAGMA integrity_check` (b-trees, indexes),
the schema version, and the row counts of every table.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlcipher3
import sqlite_vec

from ragdesk.core.records import VectorSpace
from ragdesk.core.store.sqlite import schema as migrations
from ragdesk.core.store.keys import KdfParams, derive_key, wipe
from ragdesk.core.store.sqlite.vault import DB_NAME, SIDECAR_FORMAT, SIDECAR_NAME
from ragdesk.errors import StorageError, VaultMissing, VaultTooNew, WrongPassphrase

log = logging.getLogger("ragdesk.store.snapshot")

PLAINTEXT_HEADER = b"SQLite format 3\x00"
# Enough page cache that an integrity check of a mid-sized vault does not decrypt pages twice.
_CACHE_KIB = 64 * 1024


@dataclass(frozen=True)
class Sidecar:
    """The parsed vault.json: KDF parameters (and a pending set mid passphrase change)."""

    data: dict[str, Any]
    kdf: KdfParams
    pending: KdfParams | None

    @classmethod
    def read(cls, folder: Path) -> Sidecar:
        path = folder / SIDECAR_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except FileNotFoundError:
            raise VaultMissing(
                f"the key file {path} is missing; without it the vault cannot be opened"
            ) from None
        except (OSError, ValueError) as exc:
            raise StorageError(f"cannot read {path}: {exc}") from exc
        if data.get("format", 0) > SIDECAR_FORMAT:
            raise VaultTooNew("this vault was written by a newer RagDesk; please update RagDesk")
        try:
            kdf = KdfParams.from_json(data["kdf"])
            pending = KdfParams.from_json(data["pending"]) if "pending" in data else None
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{path} is damaged ({exc}); restore it from a backup") from exc
        return cls(data, kdf, pending)

    def settled(self, params: KdfParams) -> dict[str, Any]:
        """The sidecar content for a copy whose key was derived with `params`."""
        data = {k: v for k, v in self.data.items() if k != "pending"}
        data["kdf"] = params.to_json()
        return data


@dataclass
class Health:
    """What the checks found; `problems` empty means healthy."""

    schema_version: int
    cipher_errors: list[str] = field(default_factory=list)
    integrity_errors: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    vector_space: VectorSpace | None = None
    chunks: int = 0
    vectors: int | None = None  # None: no vector table yet
    documents: int = 0
    conversations: int = 0
    messages: int = 0

    @property
    def problems(self) -> list[str]:
        return [*self.cipher_errors, *self.integrity_errors]


def has_plaintext_header(db_file: Path) -> bool:
    """True if the file is an unencrypted SQLite database (which a vault never is)."""
    with open(db_file, "rb") as f:
        return f.read(len(PLAINTEXT_HEADER)) == PLAINTEXT_HEADER


def connect(db_file: Path, key: bytes | bytearray, read_only: bool = True) -> sqlcipher3.Connection:
    """A keyed connection to `db_file` with sqlite-vec loaded; no process lock is taken.

    Raises WrongPassphrase if the key does not decrypt the first page.
    """
    if not db_file.is_file():
        raise VaultMissing(f"no vault file at {db_file}")
    uri = f"{db_file.resolve().as_uri()}?mode={'ro' if read_only else 'rw'}"
    conn = sqlcipher3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                              timeout=30.0)
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute(f"PRAGMA key = \"x'{bytes(key).hex()}'\"")
        try:
            conn.execute("PRAGMA cipher_memory_security = ON")
            # Sorting for an integrity check must not spill decrypted rows into temp files.
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as exc:
            if "not a database" in str(exc).lower():
                raise WrongPassphrase() from None
            raise StorageError(f"cannot read {db_file}: {exc}") from exc
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.enable_load_extension(False)
    except BaseException:
        conn.close()
        raise
    return conn


@dataclass
class Snapshot:
    """An open read-only connection plus the KDF parameters whose key opened it."""

    conn: sqlcipher3.Connection
    params: KdfParams
    sidecar: Sidecar
    key: bytearray

    def health(self, deep: bool = True) -> Health:
        return health(self.conn, deep=deep)


def derive_matching_key(db_file: Path, passphrase: str, sidecar: Sidecar) -> tuple[bytearray, KdfParams]:
    """The key (and its parameters) that opens `db_file`; tries the pending set too."""
    for params in (sidecar.kdf, sidecar.pending):
        if params is None:
            continue
        key = derive_key(passphrase, params)
        try:
            connect(db_file, key).close()
        except WrongPassphrase:
            wipe(key)
            continue
        return key, params
    raise WrongPassphrase()


@contextlib.contextmanager
def open_snapshot(folder: Path, passphrase: str) -> Iterator[Snapshot]:
    """Open the vault in `folder` read-only, without its process lock, for the block's duration."""
    db_file = folder / DB_NAME
    if not db_file.is_file():
        raise VaultMissing(f"no vault in {folder}")
    sidecar = Sidecar.read(folder)
    key, params = derive_matching_key(db_file, passphrase, sidecar)
    conn = None
    try:
        conn = connect(db_file, key)
        yield Snapshot(conn, params, sidecar, key)
    finally:
        if conn is not None:
            conn.close()
        wipe(key)


# --- checks -----------------------------------------------------------------------------------


def _tables(conn: sqlcipher3.Connection, schema: str = "main") -> list[tuple[str, bool]]:
    """(name, is_virtual) of every table, shadow tables of FTS5 and vec0 included."""
    rows = conn.execute(
        f"SELECT name, sql FROM {schema}.sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [(name, (sql or "").upper().startswith("CREATE VIRTUAL")) for name, sql in rows]


def counts(conn: sqlcipher3.Connection, schema: str = "main") -> dict[str, int]:
    """Row count of every table (virtual tables too): two consistent copies agree on all."""
    out: dict[str, int] = {}
    for name, _virtual in _tables(conn, schema):
        quoted = name.replace('"', '""')
        out[name] = int(conn.execute(f'SELECT count(*) FROM {schema}."{quoted}"').fetchone()[0])
    return out


def schema_version(conn: sqlcipher3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def cipher_errors(conn: sqlcipher3.Connection) -> list[str]:
    """Pages whose HMAC does not verify (tampering or bit rot); empty when every page is sound."""
    try:
        return [str(r[0]) for r in conn.execute("PRAGMA cipher_integrity_check").fetchall()]
    except sqlcipher3.DatabaseError as exc:
        return [f"cipher integrity check failed: {exc}"]


def integrity_errors(conn: sqlcipher3.Connection) -> list[str]:
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
    except sqlcipher3.DatabaseError as exc:
        return [f"integrity check failed: {exc}"]
    return [] if rows == ["ok"] else rows


def health(conn: sqlcipher3.Connection, deep: bool = True) -> Health:
    """The vault's health; `deep` reads every page (integrity checks), else only counts."""
    report = Health(schema_version=schema_version(conn))
    if deep:
        report.cipher_errors = cipher_errors(conn)
        report.integrity_errors = integrity_errors(conn)
    if report.schema_version > migrations.SCHEMA_VERSION or report.problems:
        return report  # an unknown schema or a damaged file: counting may not make sense
    try:
        report.counts = counts(conn)
        tables = report.counts
        report.chunks = tables.get("chunks", 0)
        report.vectors = tables.get("chunk_vectors")
        report.conversations = tables.get("conversations", 0)
        report.messages = tables.get("messages", 0)
        report.documents = int(conn.execute(
            "SELECT count(*) FROM documents WHERE status = 'indexed'").fetchone()[0])
        row = conn.execute("SELECT embedder, dimension FROM vector_space WHERE id = 1").fetchone()
        report.vector_space = VectorSpace(row[0], int(row[1])) if row else None
    except sqlcipher3.DatabaseError as exc:
        report.integrity_errors.append(f"reading the tables failed: {exc}")
    return report


def chunk_count_mismatches(conn: sqlcipher3.Connection) -> int:
    """Documents whose recorded chunk count disagrees with their chunks (0 when consistent)."""
    return int(conn.execute(
        "SELECT count(*) FROM documents d WHERE d.chunk_count !="
        " (SELECT count(*) FROM chunks c WHERE c.document_id = d.id)"
    ).fetchone()[0])


def setting(conn: sqlcipher3.Connection, key: str, default: Any = None) -> Any:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default
