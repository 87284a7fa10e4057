"""Read-only, lock-free looks into a vault file, and its health report.

Backups and the doctor must work while another process (the GUI indexing, `ragdesk serve`) has
the vault open and holds vault.lock. They never take that lock: `open_readonly` opens the
database file read-only with the key the passphrase derives (keyfile.py). SQLite's WAL mode
shows a reader in another process one consistent state per read transaction while the writer
carries on.

`health()` runs the checks a backup is verified with and the doctor reports:
`PRAGMA cipher_integrity_check` (every page's HMAC), `PRAGMA integrity_check` (b-trees, indexes),
the schema version, and the row counts of every table. `engine_versions()` looks at the engine
itself, without a vault: SQLCipher, the sqlite-vec extension and FTS5.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlcipher3

from ragdesk.core.records import VectorSpace
from ragdesk.core.store.keys import KdfParams, wipe
from ragdesk.core.store.sqlite import keyfile, schema
from ragdesk.core.store.sqlite.keyfile import DB_NAME, Sidecar
from ragdesk.errors import VaultMissing

PLAINTEXT_HEADER = b"SQLite format 3\x00"


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


@dataclass
class VaultFile:
    """A vault file open read-only: the connection, the sidecar and the key that opened it."""

    conn: sqlcipher3.Connection
    params: KdfParams
    sidecar: Sidecar
    key: bytearray

    def health(self, deep: bool = True) -> Health:
        return health(self.conn, deep=deep)


@contextlib.contextmanager
def open_readonly(folder: Path, passphrase: str) -> Iterator[VaultFile]:
    """The vault (or backup) in `folder`, open read-only without its process lock for the
    block's duration; the key is wiped afterwards."""
    db_file = folder / DB_NAME
    if not db_file.is_file():
        raise VaultMissing(f"no vault in {folder}")
    sidecar = Sidecar.read(folder)

    def opens(key: bytearray, params: KdfParams) -> VaultFile:
        return VaultFile(keyfile.connect(db_file, key), params, sidecar, key)

    opened = keyfile.open_with_passphrase(passphrase, sidecar, opens)
    try:
        yield opened
    finally:
        opened.conn.close()
        wipe(opened.key)


@dataclass
class EngineVersions:
    """The database engine this installation runs on; `error` set means a part of it is missing
    (and the versions read before that part failed are kept)."""

    sqlcipher: str | None = None  # empty: SQLite without SQLCipher
    sqlite_vec: str | None = None
    error: str | None = None


def engine_versions() -> EngineVersions:
    """SQLCipher's and sqlite-vec's versions, with FTS5 and its `porter unicode61` tokenizer
    tried, in a throw-away in-memory database."""
    found = EngineVersions()
    conn = sqlcipher3.connect(":memory:")
    try:
        found.sqlcipher = conn.execute("PRAGMA cipher_version").fetchone()[0]
        keyfile.load_sqlite_vec(conn)  # the same loading every vault connection does
        found.sqlite_vec = conn.execute("SELECT vec_version()").fetchone()[0]
        conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61')")
    except Exception as exc:  # any failure here means a broken installation
        found.error = str(exc)
    finally:
        conn.close()
    return found


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
    if report.schema_version > schema.SCHEMA_VERSION or report.problems:
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
