"""The encrypted SQLite vault: SQLCipher 4 + sqlite-vec + FTS5 in one file.

Files in the data folder:
  vault.db        the SQLCipher database (all text, vectors, originals, chats, audit log)
  vault.db-wal    its write-ahead log (encrypted by SQLCipher like the database)
  vault.json      key-derivation parameters and salt: not secret
  vault.lock      an advisory lock so that only one process opens the vault at a time

Each thread gets its own connection (SQLite connections are not shared across threads); all of
them share the key, which is wiped from memory when the vault is locked.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlcipher3
import sqlite_vec

from ragdesk.core.records import (
    ApiToken,
    AuditEvent,
    Chunk,
    ChunkDraft,
    Collection,
    Conversation,
    Document,
    DocumentInfo,
    Message,
    StoreStatus,
    VectorSpace,
)
from ragdesk.core.store.sqlite import schema as migrations
from ragdesk.core.store.base import matching_token
from ragdesk.core.store.keyword import (
    BM25_B,
    BM25_K1,
    KEYWORD_BUDGET,
    UNRANKED_WINDOW,
    bm25_idf,
    keyword_plan,
    query_terms,
)
from ragdesk.core.store.keys import KdfParams, derive_key, wipe
from ragdesk.core.store.sqlite.vectors import DEFAULT_MAX_BYTES, VectorIndex
from ragdesk.errors import (
    RagdeskError,
    StorageError,
    VaultExists,
    VaultInUse,
    VaultLocked,
    VaultMissing,
    VaultTooNew,
    WrongPassphrase,
)

log = logging.getLogger("ragdesk.store")

SIDECAR_FORMAT = 1
# Page cache per connection, in KiB. Vector scans were 6x slower with SQLCipher's default cache:
# every page read from disk is decrypted again. The cache only grows as pages are used.
DEFAULT_CACHE_KIB = 512 * 1024

DB_NAME = "vault.db"
SIDECAR_NAME = "vault.json"
LOCK_NAME = "vault.lock"

_DOCUMENT_COLUMNS = (
    "id, collection_id, path, title, format, size, mtime, content_hash, status, error, pages,"
    " chunk_count, added_at, updated_at"
)
_CHUNK_COLUMNS = "id, document_id, ordinal, text, page_start, page_end, char_start, char_end, heading"


_IN_BATCH = 10_000  # ids per "IN (...)" (SQLite allows 32766 parameters)


def _varints(data: bytes) -> list[int]:
    """SQLite varints, as FTS5 writes its averages record and docsize rows."""
    values, value = [], 0
    for byte in data:
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            values.append(value)
            value = 0
    return values


def _token_counts(blobs: list[bytes]) -> np.ndarray:
    """Each chunk's length in tokens, all columns together, from its FTS5 docsize row (one
    varint per column)."""
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    lengths = np.zeros(len(blobs))
    if not len(data):
        return lengths
    # Vectorised varint sums: each byte adds its 7 bits shifted by its distance to the last
    # byte of its varint (the first byte below 0x80 from it on).
    ends = np.flatnonzero(data < 0x80)
    index = np.arange(len(data))
    shift = ends[np.minimum(np.searchsorted(ends, index), len(ends) - 1)] - index
    values = (data & 0x7F).astype(np.int64) << (7 * shift)
    sizes = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    present = sizes > 0
    lengths[present] = np.add.reduceat(values, starts[present])
    return lengths


@contextlib.contextmanager
def _read_snapshot(db: sqlcipher3.Connection) -> Iterator[None]:
    """One read transaction (a consistent snapshot in WAL mode) unless one is open already."""
    if db.in_transaction:
        yield
        return
    db.execute("BEGIN")
    try:
        yield
    finally:
        db.execute("COMMIT")


def exists(home: Path) -> bool:
    return (home / DB_NAME).exists()


# --- the sidecar: KDF parameters and salt -----------------------------------------------------


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_sidecar(home: Path) -> dict[str, Any]:
    try:
        data = json.loads((home / SIDECAR_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VaultMissing(
            f"the key file {home / SIDECAR_NAME} is missing; without it the vault cannot be opened"
        ) from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {home / SIDECAR_NAME}: {exc}") from exc
    if data.get("format", 0) > SIDECAR_FORMAT:
        raise VaultTooNew(
            "this vault was written by a newer RagDesk; it was not opened or changed."
            " Please update RagDesk."
        )
    return data


# --- the process lock -------------------------------------------------------------------------


class _ProcessLock:
    """An exclusive advisory lock on vault.lock, released by the OS if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "a+b")  # noqa: SIM115 - held for the vault's lifetime
        try:
            self._acquire()
        except OSError:
            self._file.close()
            raise VaultInUse(
                "the vault is in use by another RagDesk process; close it there first"
            ) from None

    def _acquire(self) -> None:
        if os.name == "nt":  # pragma: no cover - exercised on Windows builds only
            import msvcrt

            msvcrt.locking(self._file.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release(self) -> None:
        if self._file.closed:
            return
        if os.name != "nt":
            import fcntl

            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()


# --- error sorting ----------------------------------------------------------------------------


def _environment_error(exc: sqlcipher3.Error) -> RagdeskError | None:
    """Map SQLite failures that are the environment's fault to a clear message; None = a bug."""
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
def _sorted_errors() -> Iterator[None]:
    try:
        yield
    except sqlcipher3.Error as exc:
        mapped = _environment_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


# --- opening ----------------------------------------------------------------------------------


def create(
    home: Path,
    passphrase: str,
    kdf: KdfParams | None = None,
    cache_kib: int = DEFAULT_CACHE_KIB,
) -> Vault:
    """Make a new, empty vault in `home`. Refuses to touch an existing one."""
    if not passphrase:
        raise RagdeskError("the passphrase must not be empty")
    home.mkdir(parents=True, exist_ok=True)
    if exists(home) or (home / SIDECAR_NAME).exists():
        raise VaultExists(f"a vault already exists in {home}")
    lock = _ProcessLock(home / LOCK_NAME)
    try:
        params = kdf or KdfParams.fresh()
        _write_json_atomically(
            home / SIDECAR_NAME,
            {"format": SIDECAR_FORMAT, "kdf": params.to_json(), "created_at": time.time()},
        )
        key = derive_key(passphrase, params)
        vault = Vault(home, key, params, lock, cache_kib=cache_kib)
        vault._migrate()
        vault.audit("vault created")
        return vault
    except BaseException:
        lock.release()
        raise


class _NoLock:
    """A read-only vault takes no process lock (like backups): the owner may keep writing."""

    def release(self) -> None:
        pass


def unlock(home: Path, passphrase: str, cache_kib: int = DEFAULT_CACHE_KIB,
           read_only: bool = False) -> Vault:
    """Open an existing vault. Wrong passphrase, newer schema, in use: a clear RagdeskError.

    `read_only` opens the file read-only without the process lock and writes nothing at all (no
    audit entry, no migration, no sidecar change); any write fails. `ragdesk migrate` reads its
    source this way."""
    if not exists(home):
        raise VaultMissing(f"no vault in {home}; create one with `ragdesk init`")
    sidecar = _read_sidecar(home)
    lock: _ProcessLock | _NoLock = _NoLock() if read_only else _ProcessLock(home / LOCK_NAME)
    try:
        candidates = [KdfParams.from_json(sidecar["kdf"])]
        if "pending" in sidecar:  # a passphrase change was interrupted: either key may be right
            candidates.append(KdfParams.from_json(sidecar["pending"]))
        for params in candidates:
            key = derive_key(passphrase, params)
            vault = Vault(home, key, params, lock, cache_kib=cache_kib, read_only=read_only)
            try:
                vault._check_key()
            except WrongPassphrase:
                vault._forget()
                continue
            if read_only:
                found = vault._query("PRAGMA user_version")[0][0]
                if found != migrations.SCHEMA_VERSION:
                    vault._forget()
                    raise StorageError(
                        f"the vault in {home} has schema {found}, this release {migrations.SCHEMA_VERSION};"
                        " open it once normally (e.g. `ragdesk status`) to upgrade it, then retry")
                return vault
            if "pending" in sidecar:
                vault._settle_pending(sidecar, params)
            vault._migrate()
            vault.audit("vault opened")
            return vault
        raise WrongPassphrase()
    except BaseException:
        lock.release()
        raise


class Vault:
    """An unlocked vault; implements the Store protocol."""

    def __init__(
        self,
        home: Path,
        key: bytearray,
        params: KdfParams,
        lock: _ProcessLock | _NoLock,
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
        self._connections_guard = threading.Lock()
        # Vectors held in RAM for fast exact search; None until first used (or when too big).
        self.vector_memory_limit = DEFAULT_MAX_BYTES
        self._vectors: VectorIndex | None = None
        self._vectors_state = "not loaded"  # "not loaded" | "loaded" | "too big"
        self._vectors_guard = threading.Lock()
        # word -> its tokens as FTS5 indexes them (porter stems, folded diacritics)
        self._fts_token_cache: dict[str, tuple[str, ...]] = {}

    # --- connections ------------------------------------------------------------------------

    @property
    def is_locked(self) -> bool:
        return not self._key

    def _connect(self) -> sqlcipher3.Connection:
        if self.is_locked:
            raise VaultLocked("the vault is locked")
        target = f"{self.path.resolve().as_uri()}?mode=ro" if self.read_only else str(self.path)
        conn = sqlcipher3.connect(
            target, isolation_level=None, check_same_thread=False, timeout=10.0,
            uri=self.read_only,
        )
        try:
            # SQLCipher logs decryption failures to stderr; a wrong passphrase is reported once,
            # as a clear message, by the caller.
            conn.execute("PRAGMA cipher_log_level = NONE")
            conn.execute(f"PRAGMA key = \"x'{self._key.hex()}'\"")
            conn.execute("PRAGMA cipher_memory_security = ON")
            with _sorted_errors():
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                found = conn.execute("PRAGMA user_version").fetchone()[0]
            migrations.check_version(found)
            conn.enable_load_extension(True)
            sqlite_vec.load(conn)
            conn.enable_load_extension(False)
            with _sorted_errors():
                if not self.read_only:  # WAL is recorded in the file; a reader need not set it
                    conn.execute("PRAGMA journal_mode = WAL")
                for pragma in (
                    "secure_delete = ON",
                    "temp_store = MEMORY",
                    "foreign_keys = ON",
                    # WAL + NORMAL: a commit survives the process being killed at any moment
                    # and the file is never left inconsistent; only a power cut can take back
                    # the last commits. FULL cost an fsync (~7 ms here) on every commit, e.g.
                    # four before each chat answer could start.
                    "synchronous = NORMAL",
                    f"cache_size = -{int(self._cache_kib)}",
                ):
                    conn.execute(f"PRAGMA {pragma}")
        except BaseException:
            conn.close()
            raise
        with self._connections_guard:
            self._connections.append(conn)
        return conn

    @property
    def db(self) -> sqlcipher3.Connection:
        """This thread's connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlcipher3.Connection]:
        """This thread's connection in a write transaction: committed on success, else rolled
        back. Inside `batch()` it is a savepoint of the batch's transaction: its writes are
        undone alone if it fails, and committed with the batch."""
        db = self.db
        local = self._local
        depth = getattr(local, "depth", 0)
        with _sorted_errors():
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

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with _sorted_errors():
            return self.db.execute(sql, params).fetchall()

    def _check_key(self) -> None:
        self.db  # noqa: B018 - opening the connection reads the first page with the key

    def _migrate(self) -> None:
        found = self._query("PRAGMA user_version")[0][0]
        with _sorted_errors():
            migrations.migrate(self.db, found)

    def _forget(self) -> None:
        """Close connections and wipe the key, keeping the process lock (unlock retries)."""
        with self._connections_guard:
            for conn in self._connections:
                with contextlib.suppress(Exception):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._vectors, self._vectors_state = None, "not loaded"
        self._fts_token_cache.clear()  # words of past questions
        self._word_chunks_cache = None
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

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock()

    # --- passphrase -------------------------------------------------------------------------

    def change_passphrase(self, new_passphrase: str, kdf: KdfParams | None = None) -> None:
        """Re-encrypt the vault under a new key (PRAGMA rekey), safe against a crash midway.

        The new salt is written to the sidecar as `pending` before the rekey, so whichever key
        the database holds after a crash, the sidecar can derive it; the next unlock settles it.
        """
        if not new_passphrase:
            raise RagdeskError("the new passphrase must not be empty")
        new_params = kdf or KdfParams.fresh(
            memory_kib=self._params.memory_kib,
            iterations=self._params.iterations,
            lanes=self._params.lanes,
        )
        new_key = derive_key(new_passphrase, new_params)
        sidecar = _read_sidecar(self.home)
        sidecar["pending"] = new_params.to_json()
        _write_json_atomically(self.home / SIDECAR_NAME, sidecar)
        # Only this connection may be open while the key changes.
        current = self.db
        with self._connections_guard:
            others = [c for c in self._connections if c is not current]
            self._connections = [current]
        for conn in others:
            conn.close()
        with _sorted_errors():
            current.execute(f"PRAGMA rekey = \"x'{new_key.hex()}'\"")
            current.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wipe(self._key)
        self._key = new_key
        self._params = new_params
        self._settle_pending(sidecar, new_params)
        self.audit("passphrase changed")

    def _settle_pending(self, sidecar: dict[str, Any], params: KdfParams) -> None:
        sidecar = dict(sidecar)
        sidecar.pop("pending", None)
        sidecar["kdf"] = params.to_json()
        _write_json_atomically(self.home / SIDECAR_NAME, sidecar)

    @property
    def kdf_params(self) -> KdfParams:
        return self._params

    # --- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # --- audit ------------------------------------------------------------------------------

    def audit(self, event: str, **detail: Any) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO audit_log(at, event, detail) VALUES (?, ?, ?)",
                (time.time(), event, json.dumps(detail, default=str)),
            )

    def audit_events(self, limit: int = 100) -> list[AuditEvent]:
        rows = self._query(
            "SELECT id, at, event, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [AuditEvent(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    # --- collections ------------------------------------------------------------------------

    def collection(self, name: str, create: bool = True) -> Collection | None:
        rows = self._query("SELECT id FROM collections WHERE name = ?", (name,))
        if not rows:
            if not create:
                return None
            with self._transaction() as db:
                db.execute(
                    "INSERT OR IGNORE INTO collections(name, created_at) VALUES (?, ?)",
                    (name, time.time()),
                )
            rows = self._query("SELECT id FROM collections WHERE name = ?", (name,))
        return self._collection(rows[0][0])

    def _collection(self, collection_id: int) -> Collection:
        name = self._query("SELECT name FROM collections WHERE id = ?", (collection_id,))[0][0]
        folders = self._query(
            "SELECT folder FROM collection_folders WHERE collection_id = ? ORDER BY folder",
            (collection_id,),
        )
        return Collection(collection_id, name, tuple(f[0] for f in folders))

    def collections(self) -> list[Collection]:
        return [self._collection(r[0]) for r in self._query("SELECT id FROM collections ORDER BY name")]

    def add_folder(self, collection_id: int, folder: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO collection_folders(collection_id, folder) VALUES (?, ?)",
                (collection_id, folder),
            )

    # --- documents --------------------------------------------------------------------------

    @staticmethod
    def _document(row: Sequence[Any]) -> Document:
        return Document(*row)

    def document(self, document_id: int) -> Document | None:
        rows = self._query(f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (document_id,))
        return self._document(rows[0]) if rows else None

    def document_by_path(self, collection_id: int, path: str) -> Document | None:
        rows = self._query(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE collection_id = ? AND path = ?",
            (collection_id, path),
        )
        return self._document(rows[0]) if rows else None

    def documents(self, collection_id: int | None = None) -> list[Document]:
        if collection_id is None:
            rows = self._query(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY path")
        else:
            rows = self._query(
                f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE collection_id = ? ORDER BY path",
                (collection_id,),
            )
        return [self._document(r) for r in rows]

    def put_document(
        self,
        info: DocumentInfo,
        chunks: Sequence[ChunkDraft],
        vectors: np.ndarray | None,
        original: bytes | None,
    ) -> Document:
        if vectors is not None and len(vectors) != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        space = self.vector_space() if vectors is not None and len(chunks) else None
        if vectors is not None and len(chunks):
            if space is None:
                raise ValueError("set the vault's vector space before storing vectors")
            if vectors.shape[1] != space.dimension:
                raise ValueError(
                    f"vectors have {vectors.shape[1]} dimensions, the vault {space.dimension}"
                )
        now = time.time()
        old_chunk_ids: list[int] = []
        row = (
            info.title, info.format, info.size, info.mtime, info.content_hash, info.status,
            info.error, info.pages, len(chunks), now,
        )
        with self._transaction() as db:
            old = db.execute(
                "SELECT id FROM documents WHERE collection_id = ? AND path = ?",
                (info.collection_id, info.path),
            ).fetchone()
            if old is None:
                cur = db.execute(
                    "INSERT INTO documents(title, format, size, mtime, content_hash, status, error,"
                    " pages, chunk_count, updated_at, collection_id, path, added_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*row, info.collection_id, info.path, now),
                )
                document_id = cur.lastrowid
            else:  # same document, new content: its id (and links to it) stay valid
                document_id = old[0]
                old_chunk_ids = self._delete_contents(db, document_id)
                db.execute(
                    "UPDATE documents SET title = ?, format = ?, size = ?, mtime = ?,"
                    " content_hash = ?, status = ?, error = ?, pages = ?, chunk_count = ?,"
                    " updated_at = ? WHERE id = ?",
                    (*row, document_id),
                )
            chunk_ids = []
            for ordinal, c in enumerate(chunks):
                cur = db.execute(
                    "INSERT INTO chunks(document_id, ordinal, text, page_start, page_end,"
                    " char_start, char_end, heading) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (document_id, ordinal, c.text, c.page_start, c.page_end,
                     c.char_start, c.char_end, c.heading),
                )
                chunk_ids.append(cur.lastrowid)
            if vectors is not None and len(chunks):
                matrix = np.ascontiguousarray(vectors, dtype=np.float32)
                db.executemany(
                    "INSERT INTO chunk_vectors(chunk_id, embedding, collection_id) VALUES (?, ?, ?)",
                    [
                        (cid, matrix[i].tobytes(), info.collection_id)
                        for i, cid in enumerate(chunk_ids)
                    ],
                )
            if original is not None:
                db.execute(
                    "INSERT INTO originals(document_id, data) VALUES (?, ?)",
                    (document_id, original),
                )
            self._after_commit(functools.partial(
                self._index_vectors, old_chunk_ids, chunk_ids,
                vectors if vectors is not None and chunk_ids else None, info.collection_id))
        doc = self.document(document_id)
        assert doc is not None
        return doc

    def _index_vectors(self, removed: list[int], added: list[int], vectors: np.ndarray | None,
                       collection_id: int) -> None:
        """Committed: now the in-memory vector index follows."""
        if self._vectors is not None:
            self._vectors.remove(removed)
            if vectors is not None:
                self._vectors.add(added, vectors, collection_id)

    def _delete_contents(self, db: sqlcipher3.Connection, document_id: int) -> list[int]:
        """Delete a document's chunks, vectors and original; return the chunk ids removed."""
        chunk_ids = [r[0] for r in db.execute(
            "SELECT id FROM chunks WHERE document_id = ?", (document_id,)).fetchall()]
        if self._has_vector_table(db):
            db.execute(
                "DELETE FROM chunk_vectors WHERE chunk_id IN"
                " (SELECT id FROM chunks WHERE document_id = ?)",
                (document_id,),
            )
        db.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        db.execute("DELETE FROM originals WHERE document_id = ?", (document_id,))
        return chunk_ids

    def _delete_document(self, db: sqlcipher3.Connection, document_id: int) -> list[int]:
        chunk_ids = self._delete_contents(db, document_id)
        db.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return chunk_ids

    def touch_document(self, document_id: int, mtime: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE documents SET mtime = ? WHERE id = ?", (mtime, document_id))

    def remove_document(self, document_id: int) -> None:
        with self._transaction() as db:
            removed = self._delete_document(db, document_id)
            self._after_commit(functools.partial(self._index_vectors, removed, [], None, 0))

    def original(self, document_id: int) -> bytes | None:
        rows = self._query("SELECT data FROM originals WHERE document_id = ?", (document_id,))
        return bytes(rows[0][0]) if rows else None

    # --- chunks and search ------------------------------------------------------------------

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = self._query(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", list(chunk_ids))
        by_id = {r[0]: Chunk(*r) for r in rows}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def document_chunks(self, document_id: int) -> list[Chunk]:
        rows = self._query(
            f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE document_id = ? ORDER BY ordinal",
            (document_id,),
        )
        return [Chunk(*r) for r in rows]

    @staticmethod
    def fts_query(text: str) -> str:
        """Turn anything a user typed into a safe FTS5 query: each word quoted, OR-ed (BM25
        ranks documents with more and rarer matching words first). '' when there is no word."""
        return " OR ".join(f'"{t}"' for t in query_terms(text))

    # FTS5's bm25() costs a few microseconds for each chunk that matches (tens with
    # cipher_memory_security, whose mlock/munlock pair per allocation FTS5 pays per row and
    # phrase), after counting the chunks of every query word. So a common word made every query
    # cost the whole index: 1-3 s at 100k chunks, ten times that at 1M. Hence:
    # * a word in half the chunks or more is left out: BM25 gives it no weight (FTS5 clamps its
    #   idf to 1e-6), it only drags every chunk into the ranking (CISI nDCG unchanged);
    # * when the other words' chunks add up to more than this budget (and the vault has more
    #   chunks than it), the commonest are left out of the ranking too: they weigh least (idf
    #   falls as a word's chunks grow). That bounds the keyword part to ~25 ms at 100k and 1M
    #   chunks here. Quality: on CISI with the budget scaled like 2000 of 100k chunks (2%) hybrid
    #   nDCG@10 went 0.449 -> 0.433, like 2000 of 1M (0.2%) -> 0.423; vector alone is 0.421
    #   (benchmarks/bench_keyword_budget.py).
    # Vaults of up to this many chunks are searched exactly as before.
    keyword_budget = KEYWORD_BUDGET

    def keyword_search(
        self, query: str, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        words, ranked = self._keyword_plan(terms)
        if not words:
            return []
        if collection_ids is None:
            source, where, params = "chunks_fts f", "", ()
        else:
            marks = ",".join("?" * len(collection_ids))
            source = ("chunks_fts f JOIN chunks c ON c.id = f.rowid"
                      " JOIN documents d ON d.id = c.document_id")
            where, params = f" AND d.collection_id IN ({marks})", tuple(collection_ids)
        if not ranked:
            # Every word is common: chunks holding all of the given words, unranked, from the
            # last 16 x budget chunks indexed (AND-ing a dozen common words over the whole index
            # took 0.1-0.5 s at 1M chunks; this takes 2-5 ms).
            newest = self._query("SELECT max(id) FROM chunks")[0][0] or 0
            rows = self._query(
                f"SELECT f.rowid FROM {source} WHERE chunks_fts MATCH ?{where} AND f.rowid > ?"
                " ORDER BY f.rowid LIMIT ?",
                (" AND ".join(f'"{t}"' for t in words), *params, newest - UNRANKED_WINDOW * self.keyword_budget, k),
            )
            return [(r[0], 0.0) for r in rows]
        scored = self._bm25(words)
        if scored is not None:
            ids, scores = scored
            if collection_ids is not None and len(ids):
                keep = self._in_collections(ids, collection_ids)
                ids, scores = ids[keep], scores[keep]
            order = np.lexsort((ids, -scores))[:k]  # best first; ties by chunk id, as FTS5's
            return [(int(ids[i]), float(scores[i])) for i in order]
        # A word FTS5 reads as a phrase ("e_mail" is "e mail"): FTS5 ranks. Every match is
        # fetched and the best k picked here: SQLite's ORDER BY ... LIMIT sorter allocates for
        # each row (an mlock/munlock pair each with cipher_memory_security).
        rows = self._query(
            f"SELECT f.rowid, bm25(chunks_fts) FROM {source} WHERE chunks_fts MATCH ?{where}",
            (" OR ".join(f'"{t}"' for t in words), *params),
        )
        best = sorted(rows, key=lambda r: (r[1], r[0]))[:k]  # bm25(): lower is better
        return [(r[0], -r[1]) for r in best]

    # BM25 as FTS5's bm25() computes it (fts5_aux.c: k1 1.2, b 0.75, every column weight 1,
    # idf floored at 1e-6), from FTS5's own index: each word's instances through an fts5vocab
    # table and each chunk's length from chunks_fts_docsize. bm25() itself costs ~18 us per
    # matching chunk here (a docsize lookup and allocations per row, each allocation an
    # mlock/munlock pair with cipher_memory_security); this ~3 us, for the same scores to
    # ~1e-15 (tests/unit/test_search_at_scale.py).

    def _bm25(self, words: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """(chunk ids, BM25 scores) of the chunks holding any of the words; None when a word
        is more than one token to FTS5 (a phrase, which needs positions)."""
        tokens = self._fts_tokens(words)
        if any(len(t) > 1 for t in tokens):
            return None
        # Each word is a phrase to FTS5, weighed on its own even when two share a stem.
        phrases = [t[0] for t in tokens if t]
        terms = list(dict.fromkeys(phrases))
        db = self.db
        if not getattr(self._local, "fts_vocab", False):
            db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ragdesk_fts_instances"
                       " USING fts5vocab(main, chunks_fts, instance)")
            self._local.fts_vocab = True
        empty = np.zeros(0, dtype=np.int64), np.zeros(0)
        if not terms:
            return empty
        with _sorted_errors(), _read_snapshot(db):
            totals = _varints(self._fts_stats()[1])  # rows, then each column's tokens
            # One row per instance of the word, with its chunk's docsize row (a rowid lookup).
            hits = [
                db.execute(
                    "SELECT i.doc, s.sz FROM temp.ragdesk_fts_instances i"
                    " JOIN chunks_fts_docsize s ON s.id = i.doc WHERE i.term = ?", (t,),
                ).fetchall()
                for t in terms
            ]
        sizes = {doc: size for rows in hits for doc, size in rows}
        if not sizes:
            return empty
        ids = np.fromiter(sorted(sizes), dtype=np.int64, count=len(sizes))
        lengths = _token_counts([bytes(sizes[int(i)]) for i in ids])
        chunk_count = totals[0] if totals else 0
        average = sum(totals[1:]) / chunk_count if chunk_count else 1.0
        k1, b = BM25_K1, BM25_B
        norm = k1 * (1 - b + b * lengths / (average or 1.0))
        scores = np.zeros(len(ids))
        per_term = {t: np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
                    for t, rows in zip(terms, hits)}
        for term in phrases:
            found, tf = np.unique(per_term[term], return_counts=True)
            n = len(found)
            at = np.searchsorted(ids, found)
            scores[at] += bm25_idf(chunk_count, n) * (tf * (k1 + 1)) / (tf + norm[at])
        return ids, scores

    def _fts_tokens(self, words: list[str]) -> list[tuple[str, ...]]:
        """Each word through the index's own tokenizer (a scratch FTS5 table in memory)."""
        cache = self._fts_token_cache
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            db = self.db
            if not getattr(self._local, "fts_tokenizer", False):
                db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ragdesk_tokenizer"
                           " USING fts5(t, tokenize='porter unicode61')")
                db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.ragdesk_tokenizer_i"
                           " USING fts5vocab(temp, ragdesk_tokenizer, instance)")
                self._local.fts_tokenizer = True
            with _sorted_errors():
                db.execute("DELETE FROM temp.ragdesk_tokenizer")
                db.executemany("INSERT INTO temp.ragdesk_tokenizer(rowid, t) VALUES (?, ?)",
                               list(enumerate(missing)))
                rows = db.execute("SELECT doc, term FROM temp.ragdesk_tokenizer_i"
                                  " ORDER BY doc, offset").fetchall()
                db.execute("DELETE FROM temp.ragdesk_tokenizer")
            found: dict[int, list[str]] = {}
            for i, term in rows:
                found.setdefault(i, []).append(term)
            if len(cache) > 100_000:
                cache.clear()
            cache.update((w, tuple(found.get(i, ()))) for i, w in enumerate(missing))
        return [cache[w] for w in words]

    def _in_collections(self, ids: np.ndarray, collection_ids: Sequence[int]) -> np.ndarray:
        """A mask over chunk ids: those whose document is in one of the collections."""
        wanted = {int(c) for c in collection_ids}
        keep: set[int] = set()
        for start in range(0, len(ids), _IN_BATCH):
            batch = [int(i) for i in ids[start:start + _IN_BATCH]]
            marks = ",".join("?" * len(batch))
            rows = self._query(
                "SELECT c.id, d.collection_id FROM chunks c JOIN documents d ON d.id = c.document_id"
                f" WHERE c.id IN ({marks})", batch)
            keep.update(r[0] for r in rows if r[1] in wanted)
        return np.fromiter((int(i) in keep for i in ids), dtype=bool, count=len(ids))

    def _keyword_plan(self, terms: list[str]) -> tuple[list[str], bool]:
        """The words to search for and whether to rank them by BM25 (`keyword.keyword_plan`, the
        same plan as the PostgreSQL store's). Words are counted only up to the budget (or half
        the index) + 1, so the costly words all count the same and the fallback takes the
        longest of them (long words are the rarer ones)."""
        budget = self.keyword_budget
        rows = self._fts_rows()
        if rows <= budget:  # a small vault: every word, as always
            return terms, True
        half = (rows + 1) // 2
        chunks = dict(zip(terms, self._word_chunks(terms, min(budget, half) + 1, rows)))
        return keyword_plan(terms, chunks, rows, budget)

    # (cap, chunks in the index when counted) -> {word: chunks holding it, counted up to cap}
    _word_chunks_cache: tuple[tuple[int, int], dict[str, int]] | None = None

    def _word_chunks(self, terms: list[str], cap: int, rows: int) -> list[int]:
        """How many chunks hold each word, counted up to `cap` (~0.35 us per chunk counted:
        ~0.7 ms for a common word). Kept while the index is within 10% of its size when they
        were counted, indexing included: they only choose which words to rank (the ranking
        itself counts afresh), and most questions share most of their words. A word found in no
        chunk is counted again next time: it may be in the next document indexed."""
        cache = self._word_chunks_cache
        if (cache is None or cache[0][0] != cap or abs(rows - cache[0][1]) > cache[0][1] // 10
                or len(cache[1]) > 50_000):
            cache = ((cap, rows), {})
            self._word_chunks_cache = cache
        known = cache[1]
        missing = [t for t in terms if t not in known]
        if missing:
            counts = self._query(
                "SELECT "
                + ", ".join(
                    f"(SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ?{i}"
                    f" LIMIT {int(cap)}))"
                    for i in range(1, len(missing) + 1)
                ),
                [f'"{t}"' for t in missing],
            )[0]
            known.update((t, c) for t, c in zip(missing, counts) if c)  # (a word may come)
        return [known.get(t, 0) for t in terms]

    def _fts_stats(self) -> tuple[int, bytes]:
        """(chunks in the keyword index, a value that changes whenever the index does): FTS5's
        averages record, whose first varint is the row count. O(1)."""
        rows = self._query("SELECT block FROM chunks_fts_data WHERE id = 1")
        record = bytes(rows[0][0] or b"") if rows else b""
        value = 0
        for i, byte in enumerate(record[:9]):
            if i == 8:
                value = (value << 8) | byte
                break
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        return value, record

    def _fts_rows(self) -> int:
        return self._fts_stats()[0]

    def vector_search(
        self, vector: np.ndarray, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0 or self.vector_space() is None:
            return []
        index = self.vector_index()
        if index is not None:
            return index.search(vector, k, collection_ids)
        blob = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
        if collection_ids is None:
            rows = self._query(
                "SELECT chunk_id, distance FROM chunk_vectors WHERE embedding MATCH ? AND k = ?",
                (blob, k),
            )
        else:
            marks = ",".join("?" * len(collection_ids))
            rows = self._query(
                "SELECT chunk_id, distance FROM chunk_vectors WHERE embedding MATCH ? AND k = ?"
                f" AND collection_id IN ({marks})",
                (blob, k, *collection_ids),
            )
        return [(r[0], r[1]) for r in rows]

    def vector_index(self) -> VectorIndex | None:
        """The vectors held in memory, loaded on first use; None if they exceed the limit."""
        if self._vectors_state == "not loaded":
            with self._vectors_guard:
                if self._vectors_state == "not loaded":
                    self._load_vectors()
        return self._vectors

    def _load_vectors(self) -> None:
        space = self.vector_space()
        if space is None:
            return
        db = self.db
        t0 = time.perf_counter()
        # Each vector page is read once here: through a small page cache they neither take the
        # cache's memory nor push the keyword index's pages out of it.
        cache_size = db.execute("PRAGMA cache_size").fetchone()[0]
        db.execute("PRAGMA cache_size = -8192")
        try:
            with _sorted_errors():
                blocks = self._vec0_blocks_count()
                count = blocks if blocks is not None else self._query(
                    "SELECT count(*) FROM chunk_vectors")[0][0]
                index = VectorIndex(space.dimension, self.vector_memory_limit)
                if not index.fits(count):
                    log.warning("%d vectors exceed the %d MiB memory limit: searching on disk"
                                " instead", count, self.vector_memory_limit >> 20)
                    self._vectors_state = "too big"
                    return
                index.reserve(count)
                if blocks is None or not self._read_vec0_blocks(index, blocks):
                    index = VectorIndex(space.dimension, self.vector_memory_limit)
                    index.reserve(count)
                    self._read_vec0_rows(index)
        finally:
            db.execute(f"PRAGMA cache_size = {int(cache_size)}")
        index.prepare()  # a big index's search sketch, now rather than in the first search
        log.info("loaded %d vectors in %.2f s (%d MiB)", index.size,
                 time.perf_counter() - t0, index.nbytes >> 20)
        self._vectors, self._vectors_state = index, "loaded"

    def _read_vec0_rows(self, index: VectorIndex) -> None:
        """The vectors through the vec0 table, row by row (slow: a blob lookup per row)."""
        cur = self.db.execute("SELECT chunk_id, collection_id, embedding FROM chunk_vectors")
        while rows := cur.fetchmany(4096):
            ids = [r[0] for r in rows]
            colls = [r[1] for r in rows]
            matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32)
            index.add(ids, matrix.reshape(len(rows), index.dimension), colls)

    # sqlite-vec 0.1 keeps a vec0 table's rows in blocks of `size` slots: `_chunks` holds each
    # block's validity bitmap and rowids (int64), `_vector_chunks00` its vectors (float32) and
    # `_metadatachunks00` its first metadata column, collection_id (int64). Reading whole blocks
    # is ~50x faster than selecting through the virtual table, which looks up and opens a blob
    # for each row. Anything unexpected in that layout and the vectors are read row by row.

    @staticmethod
    def _live_slots(validity: bytes, size: int) -> np.ndarray:
        return np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")[:size] == 1

    def _vec0_blocks_count(self) -> int | None:
        """The vectors stored, counted from vec0's blocks; None if the layout is not known."""
        try:
            info = dict(self._query("SELECT key, value FROM chunk_vectors_info"))
            if (info.get("CREATE_VERSION_MAJOR"), info.get("CREATE_VERSION_MINOR")) != (0, 1):
                return None
            count = sum(
                int(self._live_slots(validity, size).sum())
                for size, validity in self._query("SELECT size, validity FROM chunk_vectors_chunks")
            )
            if count != self._query("SELECT count(*) FROM chunk_vectors_rowids")[0][0]:
                return None
        except sqlcipher3.OperationalError as exc:  # no such table or column: another layout
            log.info("vectors will be read row by row (%s)", exc)
            return None
        return count

    def _read_vec0_blocks(self, index: VectorIndex, count: int) -> bool:
        """Fill `index` from vec0's blocks; False if they do not hold what was expected."""
        dimension = index.dimension
        try:
            cur = self.db.execute(
                "SELECT c.size, c.validity, c.rowids, v.vectors, m.data FROM chunk_vectors_chunks c"
                " JOIN chunk_vectors_vector_chunks00 v ON v.rowid = c.chunk_id"
                " JOIN chunk_vectors_metadatachunks00 m ON m.rowid = c.chunk_id"
                " ORDER BY c.chunk_id"
            )
            for size, validity, rowids, vectors, colls in cur:
                expected = (8 * size, 4 * dimension * size, 8 * size, (size + 7) // 8)
                if (len(rowids), len(vectors), len(colls), len(validity)) != expected:
                    return False
                live = self._live_slots(validity, size)
                index.add(
                    np.frombuffer(rowids, dtype=np.int64)[live],
                    np.frombuffer(vectors, dtype=np.float32).reshape(size, dimension)[live],
                    np.frombuffer(colls, dtype=np.int64)[live],
                )
        except sqlcipher3.OperationalError as exc:
            log.info("vectors will be read row by row (%s)", exc)
            return False
        return index.size == count

    def _has_vector_table(self, db: sqlcipher3.Connection) -> bool:
        return (
            db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'chunk_vectors'"
            ).fetchone()
            is not None
        )

    def vector_space(self) -> VectorSpace | None:
        rows = self._query("SELECT embedder, dimension FROM vector_space WHERE id = 1")
        return VectorSpace(rows[0][0], rows[0][1]) if rows else None

    def set_vector_space(self, space: VectorSpace) -> None:
        """Record which embedder makes this vault's vectors. Changing it drops the vectors made
        by the previous one (the caller re-embeds)."""
        if self.vector_space() == space:
            return
        dim = int(space.dimension)
        with self._transaction() as db:
            db.execute("DROP TABLE IF EXISTS chunk_vectors")
            db.execute(
                "CREATE VIRTUAL TABLE chunk_vectors USING vec0("
                f"chunk_id INTEGER PRIMARY KEY, embedding float[{dim}] distance_metric=cosine,"
                " collection_id INTEGER)"
            )
            db.execute(
                "INSERT INTO vector_space(id, embedder, dimension, created_at) VALUES (1, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET embedder = excluded.embedder,"
                " dimension = excluded.dimension, created_at = excluded.created_at",
                (space.embedder, dim, time.time()),
            )
        self._vectors, self._vectors_state = None, "not loaded"

    # --- conversations ----------------------------------------------------------------------

    def create_conversation(self, title: str) -> Conversation:
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO conversations(title, created_at, updated_at) VALUES (?, ?, ?)",
                (title, now, now),
            )
        return Conversation(cur.lastrowid, title, now, now)

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._query(
            "SELECT id, title, created_at, updated_at FROM conversations WHERE id = ?",
            (conversation_id,),
        )
        return Conversation(*rows[0]) if rows else None

    def conversations(self) -> list[Conversation]:
        rows = self._query(
            "SELECT id, title, created_at, updated_at FROM conversations ORDER BY updated_at DESC"
        )
        return [Conversation(*r) for r in rows]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                (title, time.time(), conversation_id),
            )

    def delete_conversation(self, conversation_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        citations: Sequence[dict[str, Any]] = (),
        status: str = "complete",
        meta: dict[str, Any] | None = None,
    ) -> Message:
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO messages(conversation_id, role, content, citations, status, meta,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, role, content, json.dumps(list(citations)), status,
                 json.dumps(meta or {}), now),
            )
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return Message(cur.lastrowid, conversation_id, role, content, list(citations), status,
                       now, dict(meta or {}))

    def update_message(
        self,
        message_id: int,
        content: str,
        citations: Sequence[dict[str, Any]] | None = None,
        status: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        sets, params = ["content = ?"], [content]
        if citations is not None:
            sets.append("citations = ?")
            params.append(json.dumps(list(citations)))
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        if meta is not None:
            sets.append("meta = ?")
            params.append(json.dumps(meta))
        with self._transaction() as db:
            db.execute(f"UPDATE messages SET {', '.join(sets)} WHERE id = ?", (*params, message_id))

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._query(
            "SELECT id, conversation_id, role, content, citations, status, created_at, meta"
            " FROM messages WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [
            Message(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], json.loads(r[7]))
            for r in rows
        ]

    # --- health -----------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        def one(sql: str) -> int:
            return int(self._query(sql)[0][0] or 0)

        page_size = one("PRAGMA page_size")
        return StoreStatus(
            schema_version=one("PRAGMA user_version"),
            collections=one("SELECT count(*) FROM collections"),
            documents=one("SELECT count(*) FROM documents WHERE status = 'indexed'"),
            failed_documents=one("SELECT count(*) FROM documents WHERE status != 'indexed'"),
            chunks=one("SELECT count(*) FROM chunks"),
            conversations=one("SELECT count(*) FROM conversations"),
            messages=one("SELECT count(*) FROM messages"),
            originals_bytes=one("SELECT sum(length(data)) FROM originals"),
            database_bytes=one("PRAGMA page_count") * page_size,
            vector_space=self.vector_space(),
            kdf={k: v for k, v in self._params.to_json().items() if k != "salt"},
        )

    # --- LAN sharing: client tokens, the server's TLS identity, batched audit -----------------

    _TOKEN_COLUMNS = "id, name, token_hash, collections, admin, created_at, revoked_at"

    @staticmethod
    def _token(row: Sequence[Any]) -> ApiToken:
        collections = json.loads(row[3]) if row[3] is not None else None
        return ApiToken(row[0], row[1], row[2], tuple(collections) if collections is not None else None,
                        bool(row[4]), row[5], row[6])

    def create_token(self, name: str, token_hash: str, collections: Sequence[str] | None = None,
                     admin: bool = False) -> ApiToken:
        """Record a client token by the SHA-256 of its secret; an active name is refused."""
        now = time.time()
        try:
            with self._transaction() as db:
                cur = db.execute(
                    "INSERT INTO api_tokens(name, token_hash, collections, admin, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, token_hash, json.dumps(list(collections)) if collections is not None else None,
                     int(admin), now),
                )
        except sqlcipher3.IntegrityError:
            raise RagdeskError(f"a token named {name!r} already exists; revoke it first") from None
        return ApiToken(cur.lastrowid, name, token_hash,
                        tuple(collections) if collections is not None else None, admin, now)

    def tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._query(f"SELECT {self._TOKEN_COLUMNS} FROM api_tokens{where} ORDER BY name, id")
        return [self._token(r) for r in rows]

    def revoke_token(self, name: str) -> bool:
        """Revoke the active token of that name; False if there is none."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (time.time(), name),
            )
        return cur.rowcount > 0

    def verify_token(self, token_hash: str) -> ApiToken | None:
        """The active token whose hash this is, compared in constant time with each one."""
        return matching_token(self.tokens(), token_hash)

    def server_identity(self) -> tuple[str, str] | None:
        """(certificate PEM, private key PEM) of the LAN server, or None before first use."""
        rows = self._query("SELECT cert_pem, key_pem FROM server_identity WHERE id = 1")
        return (rows[0][0], rows[0][1]) if rows else None

    def set_server_identity(self, cert_pem: str, key_pem: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO server_identity(id, cert_pem, key_pem, created_at) VALUES (1, ?, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET cert_pem = excluded.cert_pem,"
                " key_pem = excluded.key_pem, created_at = excluded.created_at",
                (cert_pem, key_pem, time.time()),
            )

    def audit_many(self, events: Sequence[tuple[float, str, dict[str, Any]]]) -> None:
        """Append many (time, event, detail) entries in one transaction (one disk sync)."""
        if not events:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO audit_log(at, event, detail) VALUES (?, ?, ?)",
                [(at, event, json.dumps(detail, default=str)) for at, event, detail in events],
            )

    # --- whole-store copies (`ragdesk migrate`): exact reads and writes that keep the times ---

    def settings(self) -> dict[str, Any]:
        """Every setting, by key (the key material lives in the sidecar, never here)."""
        return {k: json.loads(v) for k, v in self._query("SELECT key, value FROM settings ORDER BY key")}

    def document_vectors(self, document_id: int) -> np.ndarray | None:
        """The document's vectors as float32 rows in chunk order, exactly as stored; None if it
        has no chunks or not every chunk has a vector."""
        space = self.vector_space()
        ids = [r[0] for r in self._query(
            "SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal", (document_id,))]
        if space is None or not ids or not self._has_vector_table(self.db):
            return None
        found: dict[int, bytes] = {}
        for start in range(0, len(ids), 500):  # vec0 answers `chunk_id IN (...)` by lookups
            batch = ids[start:start + 500]
            found.update(self._query(
                "SELECT chunk_id, embedding FROM chunk_vectors WHERE chunk_id IN"
                f" ({','.join('?' * len(batch))})", batch))
        if len(found) != len(ids):
            return None
        matrix = np.frombuffer(b"".join(found[i] for i in ids), dtype=np.float32)
        return matrix.reshape(len(ids), space.dimension).copy()

    def set_document_times(self, document_id: int, added_at: float, updated_at: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE documents SET added_at = ?, updated_at = ? WHERE id = ?",
                       (added_at, updated_at, document_id))

    def import_conversation(self, conversation: Conversation,
                            messages: Sequence[Message]) -> Conversation:
        """A conversation and its messages as they were (times, status, citations, meta), in one
        transaction; ids are new."""
        with self._transaction() as db:
            cur = db.execute(
                "INSERT INTO conversations(title, created_at, updated_at) VALUES (?, ?, ?)",
                (conversation.title, conversation.created_at, conversation.updated_at),
            )
            cid = cur.lastrowid
            db.executemany(
                "INSERT INTO messages(conversation_id, role, content, citations, status, meta,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(cid, m.role, m.content, json.dumps(list(m.citations)), m.status,
                  json.dumps(m.meta or {}), m.created_at) for m in messages],
            )
        return Conversation(cid, conversation.title, conversation.created_at,
                            conversation.updated_at)

    def import_token(self, token: ApiToken) -> ApiToken:
        """A client token as it was (hash, scope, created and revoked times); the id is new."""
        try:
            with self._transaction() as db:
                cur = db.execute(
                    "INSERT INTO api_tokens(name, token_hash, collections, admin, created_at,"
                    " revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (token.name, token.token_hash,
                     json.dumps(list(token.collections)) if token.collections is not None else None,
                     int(token.admin), token.created_at, token.revoked_at),
                )
        except sqlcipher3.IntegrityError:
            raise RagdeskError(f"a token named {token.name!r} or with the same secret already"
                               " exists") from None
        return ApiToken(cur.lastrowid, token.name, token.token_hash, token.collections,
                        token.admin, token.created_at, token.revoked_at)
