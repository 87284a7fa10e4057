"""The encrypted SQLite vault: SQLCipher 4 + sqlite-vec + FTS5 in one file; the default store.

Files in the data folder:
  vault.db        the SQLCipher database (all text, vectors, originals, chats, audit log)
  vault.db-wal    its write-ahead log (encrypted by SQLCipher like the database)
  vault.json      key-derivation parameters and salt: not secret (keyfile.py)
  vault.lock      an advisory lock so that only one process opens the vault at a time (lock.py)

`create` and `unlock` open one; `Vault` is the Store over it: the library, conversations,
settings and tokens here, the audit log in audittrail.py, keyword search in fts.py, vectors in
vec0.py, and the per-thread connections they share in connections.py.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import sqlcipher3

from ragdesk import paths
from ragdesk.core.records import (
    ApiToken,
    Chunk,
    ChunkDraft,
    Collection,
    Conversation,
    Document,
    DocumentInfo,
    Message,
    StoreStatus,
)
from ragdesk.core.store import rowmap
from ragdesk.core.store.keys import KdfParams, derive_key, wipe
from ragdesk.core.store.sqlite import keyfile, schema
from ragdesk.core.store.sqlite.audittrail import AuditTrail
from ragdesk.core.store.sqlite.errors import sorted_errors
from ragdesk.core.store.sqlite.fts import KeywordSearch
from ragdesk.core.store.sqlite.keyfile import DB_NAME, DEFAULT_CACHE_KIB, SIDECAR_NAME, Sidecar, exists
from ragdesk.core.store.sqlite.lock import LOCK_NAME, NoLock, ProcessLock
from ragdesk.core.store.sqlite.vec0 import VectorSearch, has_vector_table
from ragdesk.errors import RagdeskError, StorageError, VaultExists, VaultMissing

__all__ = ["Vault", "create", "exists", "unlock"]

_NEW_CONVERSATION = "INSERT INTO conversations(title, created_at, updated_at) VALUES (?, ?, ?)"
_NEW_MESSAGE = f"INSERT INTO messages({rowmap.NEW_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"


def create(
    home: Path,
    passphrase: str,
    kdf: KdfParams | None = None,
    cache_kib: int = DEFAULT_CACHE_KIB,
) -> Vault:
    """Make a new, empty vault in `home`. Refuses to touch an existing one."""
    if not passphrase:
        raise RagdeskError("the passphrase must not be empty")
    paths.make_private_dir(home)
    if exists(home) or (home / SIDECAR_NAME).exists():
        raise VaultExists(f"a vault already exists in {home}")
    lock = ProcessLock(home / LOCK_NAME)
    try:
        params = kdf or KdfParams.fresh()
        Sidecar.new(params).write(home)
        keyfile.create_db_file(home / DB_NAME)
        vault = Vault(home, derive_key(passphrase, params), params, lock, cache_kib=cache_kib)
        try:
            vault._migrate()
            vault.audit("vault created")
        except BaseException:
            vault._forget()
            raise
        return vault
    except BaseException:
        lock.release()
        raise


def unlock(home: Path, passphrase: str, cache_kib: int = DEFAULT_CACHE_KIB,
           read_only: bool = False) -> Vault:
    """Open an existing vault. Wrong passphrase, newer schema, in use: a clear RagdeskError.

    `read_only` opens the file read-only without the process lock and writes nothing at all (no
    audit entry, no migration, no sidecar change); any write fails. `ragdesk migrate` reads its
    source this way."""
    if not exists(home):
        raise VaultMissing(f"no vault in {home}; create one with `ragdesk init`")
    sidecar = Sidecar.read(home)
    if not read_only:  # (a read-only open changes nothing; the doctor reports wide modes)
        keyfile.tighten_vault(home)
    lock: ProcessLock | NoLock = NoLock() if read_only else ProcessLock(home / LOCK_NAME)

    def opens(key: bytearray, params: KdfParams) -> Vault:
        vault = Vault(home, key, params, lock, cache_kib=cache_kib, read_only=read_only)
        try:
            vault._check_key()
        except BaseException:
            vault._forget()
            raise
        return vault

    try:
        vault = keyfile.open_with_passphrase(passphrase, sidecar, opens)
        try:
            if read_only:
                found = vault._query("PRAGMA user_version")[0][0]
                if found != schema.SCHEMA_VERSION:
                    raise StorageError(
                        f"the vault in {home} has schema {found}, this release {schema.SCHEMA_VERSION};"
                        " open it once normally (e.g. `ragdesk status`) to upgrade it, then retry")
                return vault
            if sidecar.pending is not None:  # a passphrase change was interrupted: settle it
                sidecar.settled(vault.kdf_params).write(home)
            vault._migrate()
            vault.audit("vault opened")
            return vault
        except BaseException:
            vault._forget()
            raise
    except BaseException:
        lock.release()
        raise


class Vault(AuditTrail, KeywordSearch, VectorSearch):
    """An unlocked vault; implements the Store protocol."""

    @property
    def backend(self) -> str:
        return "vault"

    def _migrate(self) -> None:
        found = self._query("PRAGMA user_version")[0][0]
        with sorted_errors():
            schema.migrate(self.db, found)

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
        sidecar = Sidecar.read(self.home).with_pending(new_params)
        sidecar.write(self.home)
        # Only this connection may be open while the key changes.
        current = self.db
        with self._connections_guard:
            others = [c for c in self._connections if c is not current]
            self._connections = [current]
        for conn in others:
            conn.close()
        with sorted_errors():
            keyfile.rekey(current, new_key)
            current.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wipe(self._key)
        self._key = new_key
        self._params = new_params
        sidecar.settled(new_params).write(self.home)
        self.audit("passphrase changed")

    @property
    def kdf_params(self) -> KdfParams:
        return self._params

    # --- settings ---------------------------------------------------------------------------

    # Settings read are kept (as their JSON text) until this vault writes that setting: only
    # the process holding the vault's lock writes to it. Why: a LAN answer reads three settings
    # (Ollama's address, the model, its context), and each query made the search thread wait
    # for the interpreter lock again (6 % of its time at 40 questions a second, issue 21).
    # Not kept in a read-only vault (another process writes), nor inside a write transaction.

    def _reset_caches(self) -> None:
        super()._reset_caches()
        self._settings_kept: dict[str, str | None] = {}
        self._settings_generation = 0

    def get_setting(self, key: str, default: Any = None) -> Any:
        kept = self._settings_kept
        if key in kept:
            raw = kept[key]
        else:
            generation = self._settings_generation
            keep = not self.read_only and not self.db.in_transaction
            rows = self._query("SELECT value FROM settings WHERE key = ?", (key,))
            raw = rows[0][0] if rows else None
            if keep and generation == self._settings_generation:  # (no write since the read)
                kept[key] = raw
        return json.loads(raw) if raw is not None else default

    def set_setting(self, key: str, value: Any) -> None:
        self._settings_kept.pop(key, None)
        with self._transaction() as db:
            db.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )
            self._after_commit(functools.partial(self._setting_written, key))

    def _setting_written(self, key: str) -> None:
        self._settings_generation += 1
        self._settings_kept.pop(key, None)

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
        return rowmap.collection_from_rows(collection_id, name, folders)

    def collections(self) -> list[Collection]:
        return [self._collection(r[0]) for r in self._query("SELECT id FROM collections ORDER BY name")]

    def add_folder(self, collection_id: int, folder: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO collection_folders(collection_id, folder) VALUES (?, ?)",
                (collection_id, folder),
            )

    # --- documents --------------------------------------------------------------------------

    def document(self, document_id: int) -> Document | None:
        rows = self._query(f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (document_id,))
        return rowmap.document_from_row(rows[0]) if rows else None

    def documents_by_id(self, document_ids: Sequence[int]) -> dict[int, Document]:
        wanted = list(dict.fromkeys(document_ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._query(f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE id IN ({marks})", wanted)
        return {doc.id: doc for doc in map(rowmap.document_from_row, rows)}

    def document_by_path(self, collection_id: int, path: str) -> Document | None:
        rows = self._query(
            f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE collection_id = ? AND path = ?",
            (collection_id, path),
        )
        return rowmap.document_from_row(rows[0]) if rows else None

    def documents(self, collection_id: int | None = None) -> list[Document]:
        if collection_id is None:
            rows = self._query(f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents ORDER BY path")
        else:
            rows = self._query(
                f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE collection_id = ? ORDER BY path",
                (collection_id,),
            )
        return [rowmap.document_from_row(r) for r in rows]

    def put_document(
        self,
        info: DocumentInfo,
        chunks: Sequence[ChunkDraft],
        vectors: np.ndarray | None,
        original: bytes | None,
    ) -> Document:
        vectors = rowmap.vectors_to_store(len(chunks), vectors, self.vector_space, "vault")
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
                    " char_start, char_end, heading, page_breaks, context)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (document_id, ordinal, c.text, c.page_start, c.page_end,
                     c.char_start, c.char_end, c.heading, rowmap.page_breaks_text(c.page_breaks),
                     c.context),
                )
                chunk_ids.append(cur.lastrowid)
            if vectors is not None:
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
                vectors, info.collection_id))
        doc = self.document(document_id)
        assert doc is not None
        return doc

    def _delete_contents(self, db: sqlcipher3.Connection, document_id: int) -> list[int]:
        """Delete a document's chunks, vectors and original; return the chunk ids removed."""
        chunk_ids = [r[0] for r in db.execute(
            "SELECT id FROM chunks WHERE document_id = ?", (document_id,)).fetchall()]
        if has_vector_table(db):
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

    # --- chunks -------------------------------------------------------------------------------

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        if not chunk_ids:
            return []
        marks = ",".join("?" * len(chunk_ids))
        rows = self._query(f"SELECT {rowmap.CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})",
                           list(chunk_ids))
        by_id = {r[0]: rowmap.chunk_from_row(r) for r in rows}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def document_chunks(self, document_id: int) -> list[Chunk]:
        rows = self._query(
            f"SELECT {rowmap.CHUNK_COLUMNS} FROM chunks WHERE document_id = ? ORDER BY ordinal",
            (document_id,),
        )
        return [rowmap.chunk_from_row(r) for r in rows]

    # --- conversations ----------------------------------------------------------------------

    def create_conversation(self, title: str) -> Conversation:
        now = time.time()
        with self._transaction() as db:
            cur = db.execute(_NEW_CONVERSATION, (title, now, now))
        return Conversation(cur.lastrowid, title, now, now)

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._query(f"SELECT {rowmap.CONVERSATION_COLUMNS} FROM conversations WHERE id = ?",
                           (conversation_id,))
        return rowmap.conversation_from_row(rows[0]) if rows else None

    def conversations(self) -> list[Conversation]:
        rows = self._query(
            f"SELECT {rowmap.CONVERSATION_COLUMNS} FROM conversations ORDER BY updated_at DESC")
        return [rowmap.conversation_from_row(r) for r in rows]

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
            cur = db.execute(_NEW_MESSAGE, rowmap.message_values(conversation_id, role, content,
                                                                 citations, status, meta, now))
            db.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return rowmap.new_message(cur.lastrowid, conversation_id, role, content, citations, status,
                                  now, meta)

    def update_message(
        self,
        message_id: int,
        content: str,
        citations: Sequence[dict[str, Any]] | None = None,
        status: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        changes = rowmap.message_changes(content, citations, status, meta)
        sets = ", ".join(f"{column} = ?" for column, _ in changes)
        with self._transaction() as db:
            db.execute(f"UPDATE messages SET {sets} WHERE id = ?",
                       (*(value for _, value in changes), message_id))

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._query(
            f"SELECT {rowmap.MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY id",
            (conversation_id,),
        )
        return [rowmap.message_from_row(r) for r in rows]

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

    # --- LAN sharing: client tokens, the server's TLS identity ---------------------------------

    def create_token(self, name: str, token_hash: str, collections: Sequence[str] | None = None,
                     admin: bool = False) -> ApiToken:
        """Record a client token by the SHA-256 of its secret; an active name is refused."""
        now = time.time()
        try:
            with self._transaction() as db:
                cur = db.execute(
                    "INSERT INTO api_tokens(name, token_hash, collections, admin, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (name, token_hash, rowmap.scope_json(collections), int(admin), now),
                )
        except sqlcipher3.IntegrityError:
            raise RagdeskError(f"a token named {name!r} already exists; revoke it first") from None
        return ApiToken(cur.lastrowid, name, token_hash, rowmap.scope(collections), admin, now)

    def tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._query(f"SELECT {rowmap.TOKEN_COLUMNS} FROM api_tokens{where} ORDER BY name, id")
        return [rowmap.token_from_row(r) for r in rows]

    def revoke_token(self, name: str) -> bool:
        """Revoke the active token of that name; False if there is none."""
        with self._transaction() as db:
            cur = db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (time.time(), name),
            )
        return bool(cur.rowcount > 0)

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

    # --- whole-store copies (`ragdesk migrate`): exact reads and writes that keep the times ---

    def settings(self) -> dict[str, Any]:
        """Every setting, by key (the key material lives in the sidecar, never here)."""
        return {k: json.loads(v) for k, v in self._query("SELECT key, value FROM settings ORDER BY key")}

    def set_document_times(self, document_id: int, added_at: float, updated_at: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE documents SET added_at = ?, updated_at = ? WHERE id = ?",
                       (added_at, updated_at, document_id))

    def import_conversation(self, conversation: Conversation,
                            messages: Sequence[Message]) -> Conversation:
        """A conversation and its messages as they were (times, status, citations, meta), in one
        transaction; ids are new."""
        with self._transaction() as db:
            cid = db.execute(_NEW_CONVERSATION, (conversation.title, conversation.created_at,
                                                 conversation.updated_at)).lastrowid
            db.executemany(_NEW_MESSAGE, [
                rowmap.message_values(cid, m.role, m.content, m.citations, m.status, m.meta, m.created_at)
                for m in messages])
        return dataclasses.replace(conversation, id=cid)

    def import_token(self, token: ApiToken) -> ApiToken:
        """A client token as it was (hash, scope, created and revoked times); the id is new."""
        try:
            with self._transaction() as db:
                cur = db.execute(
                    "INSERT INTO api_tokens(name, token_hash, collections, admin, created_at,"
                    " revoked_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (token.name, token.token_hash, rowmap.scope_json(token.collections),
                     int(token.admin), token.created_at, token.revoked_at),
                )
        except sqlcipher3.IntegrityError:
            raise RagdeskError(f"a token named {token.name!r} or with the same secret already"
                               " exists") from None
        return dataclasses.replace(token, id=cur.lastrowid)
