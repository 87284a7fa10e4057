"""The PostgreSQL store: RagDesk's data in a PostgreSQL database, behind the Store protocol.

Every protocol call is one transaction on a pooled connection (inside `batch()`, a savepoint of
the batch's transaction). Original files and the server key are sealed (seal.py), the search
and vector-table SQL is in search.py, and opening the store (pool, schema, key) in connect.py.
What is left is one class that implements every role of the protocol over one pool and one key,
so it stays one piece (~600 lines) rather than being split across mixins.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

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
from ragdesk.core.store import rowmap
from ragdesk.core.store.chain import Head, Pruned, Verdict
from ragdesk.core.store.keys import KdfParams, derive_key, wipe
from ragdesk.core.store.keyword import KEYWORD_BUDGET, query_terms
from ragdesk.core.store.postgres import auditlog, search
from ragdesk.core.store.postgres.errors import sorted_errors
from ragdesk.core.store.postgres.seal import (
    KDF_SETTING,
    SERVER_KEY_AAD,
    open_sealed,
    original_aad,
    reseal,
    seal,
)
from ragdesk.errors import RagdeskError

_NEW_CONVERSATION = (
    "INSERT INTO conversations(title, created_at, updated_at) VALUES (%s, %s, %s) RETURNING id"
)
_NEW_MESSAGE = f"INSERT INTO messages({rowmap.NEW_MESSAGE_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"


def pg_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL (SQLite can, and PDFs do contain it): one character for
    one, so that offsets into the text stay right."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _one(conn: psycopg.Connection, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
    """The row a statement always returns (an aggregate, or INSERT ... RETURNING)."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return row


class PostgresStore:
    """RagDesk's data in a PostgreSQL database; implements the Store protocol."""

    def __init__(self, pool: ConnectionPool, key: bytearray, params: KdfParams, url: str,
                 vector_index: str = "hnsw") -> None:
        if vector_index not in search.VECTOR_INDEXES:
            raise ValueError(f"vector_index must be 'hnsw' or 'exact', not {vector_index!r}")
        self.vector_index = vector_index
        self._pool = pool
        self._local = threading.local()  # .conn: this thread's connection inside batch()
        self._key = key
        self._params = params
        self.url = url
        # Candidates the HNSW scan considers: at least this, and 4 per result asked for (recall
        # falls as k nears it), at most pgvector's limit of 1000. Recall against the time it
        # costs at 1M chunks: benchmarks/RESULTS.md; the hybrid query's 100 candidates scan 400.
        self.ef_search = 200
        # "bm25" ranks keyword hits as FTS5 does in the vault; "ts_rank_cd" is PostgreSQL's own.
        self.keyword_ranking = "bm25"
        self.keyword_budget = KEYWORD_BUDGET  # keyword.py says why

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def backend(self) -> str:
        return "postgresql"

    def close(self) -> None:
        """Close every connection and wipe the key from memory."""
        self._pool.close()
        wipe(self._key)
        self._key = bytearray()

    def lock(self) -> None:
        self.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection]:
        """One pooled connection and one transaction: committed on success, else rolled back.
        Inside `batch()`, the batch's connection and a savepoint of its transaction."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            with sorted_errors(), held.transaction():
                yield held
            return
        with sorted_errors(), self._pool.connection() as conn:
            yield conn

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Writes made inside commit together (see Store.batch)."""
        if getattr(self._local, "conn", None) is not None:
            yield  # already in one
            return
        with self._transaction() as conn, conn.transaction():  # inner ones are savepoints
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as conn:
            return conn.execute(sql, params).fetchall()

    # --- passphrase -------------------------------------------------------------------------

    def change_passphrase(self, new_passphrase: str, kdf: KdfParams | None = None) -> None:
        """Re-encrypt the originals and the server key under a key from the new passphrase, and
        record its KDF row, in one transaction: a crash leaves the old or the new, never both."""
        if not new_passphrase:
            raise RagdeskError("the new passphrase must not be empty")
        params = kdf or KdfParams.fresh(memory_kib=self._params.memory_kib,
                                        iterations=self._params.iterations,
                                        lanes=self._params.lanes)
        new_key = derive_key(new_passphrase, params)
        with self._transaction() as conn:
            reseal(conn, self._key, new_key, params)
        wipe(self._key)
        self._key, self._params = new_key, params
        self.audit("passphrase changed")

    # --- settings ---------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = %s", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        if key == KDF_SETTING:
            raise RagdeskError(f"the setting {key!r} is managed by the store")
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (%s, %s)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    # --- audit (chained: auditlog.py, core/store/chain.py) -------------------------------------

    def audit(self, event: str, **detail: Any) -> None:
        self.audit_many([(time.time(), event, detail)])

    def audit_events(self, limit: int = 100) -> list[AuditEvent]:
        rows = self._query(f"SELECT {rowmap.AUDIT_COLUMNS} FROM audit_log ORDER BY seq DESC LIMIT %s",
                           (limit,))
        return [rowmap.audit_from_row(r) for r in rows]

    def audit_many(self, events: Sequence[tuple[float, str, dict[str, Any]]]) -> None:
        """Append entries in one transaction (one commit, one read of the head)."""
        if not events:
            return
        with self._transaction() as conn:
            auditlog.append(conn, rowmap.audit_values(events))

    def audit_since(self, since: float) -> Iterator[AuditEvent]:
        with self._transaction() as conn:
            for row in auditlog.rows(conn, "at >= %s", (since,)):
                yield rowmap.audit_from_row(row)

    def audit_head(self) -> Head | None:
        with self._transaction() as conn:
            return auditlog.head(conn)

    def verify_audit(self, anchor: Head | None = None) -> Verdict:
        with self._transaction() as conn:
            return auditlog.verify(conn, anchor)

    def prune_audit(self, before: float) -> Pruned | None:
        with self._transaction() as conn:
            return auditlog.prune(conn, before)

    # --- collections ------------------------------------------------------------------------

    def collection(self, name: str, create: bool = True) -> Collection | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT id FROM collections WHERE name = %s", (name,)).fetchone()
            if row is None:
                if not create:
                    return None
                conn.execute(
                    "INSERT INTO collections(name, created_at) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, time.time()),
                )
                row = _one(conn, "SELECT id FROM collections WHERE name = %s", (name,))
            return self._collection(conn, row[0])

    @staticmethod
    def _collection(conn: psycopg.Connection, collection_id: int) -> Collection:
        name = _one(conn, "SELECT name FROM collections WHERE id = %s", (collection_id,))[0]
        folders = conn.execute(
            "SELECT folder FROM collection_folders WHERE collection_id = %s ORDER BY folder",
            (collection_id,),
        ).fetchall()
        return rowmap.collection_from_rows(collection_id, name, folders)

    def collections(self) -> list[Collection]:
        with self._transaction() as conn:
            ids = conn.execute("SELECT id FROM collections ORDER BY name").fetchall()
            return [self._collection(conn, r[0]) for r in ids]

    def add_folder(self, collection_id: int, folder: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO collection_folders(collection_id, folder) VALUES (%s, %s)"
                " ON CONFLICT DO NOTHING",
                (collection_id, folder),
            )

    # --- documents --------------------------------------------------------------------------

    def document(self, document_id: int) -> Document | None:
        rows = self._query(f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE id = %s",
                           (document_id,))
        return rowmap.document_from_row(rows[0]) if rows else None

    def documents_by_id(self, document_ids: Sequence[int]) -> dict[int, Document]:
        wanted = list(dict.fromkeys(int(i) for i in document_ids))
        if not wanted:
            return {}
        rows = self._query(f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE id = ANY(%s)", (wanted,))
        return {doc.id: doc for doc in map(rowmap.document_from_row, rows)}

    def document_by_path(self, collection_id: int, path: str) -> Document | None:
        rows = self._query(
            f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE collection_id = %s AND path = %s",
            (collection_id, path),
        )
        return rowmap.document_from_row(rows[0]) if rows else None

    def documents(self, collection_id: int | None = None) -> list[Document]:
        # COLLATE "C": the byte order SQLite uses, so both backends list paths alike.
        if collection_id is None:
            rows = self._query(f'SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents ORDER BY path COLLATE "C"')
        else:
            rows = self._query(
                f"SELECT {rowmap.DOCUMENT_COLUMNS} FROM documents WHERE collection_id = %s"
                ' ORDER BY path COLLATE "C"',
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
        vectors = rowmap.vectors_to_store(len(chunks), vectors, self.vector_space, "store")
        now = time.time()
        with self._transaction() as conn:
            # One statement inserts or updates, so two instances storing the same path at once
            # serialise on the row; an update keeps the id (and links to it) valid.
            document_id, inserted = _one(
                conn,
                "INSERT INTO documents(collection_id, path, title, format, size, mtime,"
                " content_hash, status, error, pages, chunk_count, added_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (collection_id, path) DO UPDATE SET title = excluded.title,"
                " format = excluded.format, size = excluded.size, mtime = excluded.mtime,"
                " content_hash = excluded.content_hash, status = excluded.status,"
                " error = excluded.error, pages = excluded.pages,"
                " chunk_count = excluded.chunk_count, updated_at = excluded.updated_at"
                " RETURNING id, (xmax = 0)",
                (info.collection_id, pg_text(info.path), pg_text(info.title), info.format, info.size,
                 info.mtime, info.content_hash, info.status,
                 pg_text(info.error) if info.error is not None else None, info.pages, len(chunks),
                 now, now),
            )
            if not inserted:
                conn.execute("DELETE FROM chunks WHERE document_id = %s", (document_id,))
                conn.execute("DELETE FROM originals WHERE document_id = %s", (document_id,))
            if chunks:
                rows = conn.execute(
                    "INSERT INTO chunks(document_id, ordinal, text, page_start, page_end,"
                    " char_start, char_end, heading, page_breaks, context)"
                    " SELECT %s, * FROM unnest(%s::int[], %s::text[], %s::int[], %s::int[],"
                    " %s::int[], %s::int[], %s::text[], %s::text[], %s::text[]) RETURNING ordinal, id",
                    (document_id, list(range(len(chunks))), [pg_text(c.text) for c in chunks],
                     [c.page_start for c in chunks], [c.page_end for c in chunks],
                     [c.char_start for c in chunks], [c.char_end for c in chunks],
                     [pg_text(c.heading) for c in chunks],
                     [rowmap.page_breaks_text(c.page_breaks) for c in chunks],
                     [pg_text(c.context) for c in chunks]),
                ).fetchall()
                chunk_ids = [cid for _, cid in sorted(rows)]
                if vectors is not None:
                    search.insert_vectors(conn, info.collection_id, chunk_ids, vectors)
            if original is not None:
                conn.execute(
                    "INSERT INTO originals(document_id, data) VALUES (%s, %s)",
                    (document_id, seal(self._key, original, original_aad(document_id))),
                )
        doc = self.document(document_id)
        assert doc is not None
        return doc

    def touch_document(self, document_id: int, mtime: float) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE documents SET mtime = %s WHERE id = %s", (mtime, document_id))

    def remove_document(self, document_id: int) -> None:
        with self._transaction() as conn:  # chunks, vectors and the original go by cascade
            conn.execute("DELETE FROM documents WHERE id = %s", (document_id,))

    def original(self, document_id: int) -> bytes | None:
        rows = self._query("SELECT data FROM originals WHERE document_id = %s", (document_id,))
        if not rows:
            return None
        return open_sealed(self._key, bytes(rows[0][0]), original_aad(document_id))

    # --- chunks and search ------------------------------------------------------------------

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]:
        if not chunk_ids:
            return []
        rows = self._query(f"SELECT {rowmap.CHUNK_COLUMNS} FROM chunks WHERE id = ANY(%s)",
                           (list(chunk_ids),))
        by_id = {r[0]: rowmap.chunk_from_row(r) for r in rows}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def document_chunks(self, document_id: int) -> list[Chunk]:
        rows = self._query(
            f"SELECT {rowmap.CHUNK_COLUMNS} FROM chunks WHERE document_id = %s ORDER BY ordinal",
            (document_id,),
        )
        return [rowmap.chunk_from_row(r) for r in rows]

    def keyword_search(
        self, query: str, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """OR of the query's words within the keyword budget, best first (search.py)."""
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        with self._transaction() as conn:
            return search.keyword_search(conn, terms, k, collection_ids, self.keyword_budget,
                                         self.keyword_ranking)

    def vector_search(
        self, vector: np.ndarray, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        if k <= 0 or self.vector_space() is None:
            return []
        with self._transaction() as conn:
            return search.vector_search(conn, vector, k, collection_ids, self.vector_index,
                                        self.ef_search)

    def vector_space(self) -> VectorSpace | None:
        rows = self._query("SELECT embedder, dimension FROM vector_space WHERE id = 1")
        return VectorSpace(rows[0][0], rows[0][1]) if rows else None

    def set_vector_space(self, space: VectorSpace) -> None:
        """Record which embedder makes the vectors; a change drops the previous vectors."""
        dim = int(space.dimension)
        with self._transaction() as conn:
            # Instances changing it at once take turns; the second sees the first's change.
            conn.execute("LOCK TABLE vector_space IN EXCLUSIVE MODE")
            row = conn.execute("SELECT embedder, dimension FROM vector_space WHERE id = 1").fetchone()
            if row is not None and VectorSpace(row[0], row[1]) == space:
                return
            search.create_vector_table(conn, dim, self.vector_index)
            conn.execute(
                "INSERT INTO vector_space(id, embedder, dimension, created_at)"
                " VALUES (1, %s, %s, %s) ON CONFLICT(id) DO UPDATE SET embedder ="
                " excluded.embedder, dimension = excluded.dimension, created_at = excluded.created_at",
                (space.embedder, dim, time.time()),
            )

    # --- conversations ----------------------------------------------------------------------

    def create_conversation(self, title: str) -> Conversation:
        now = time.time()
        with self._transaction() as conn:
            cid = _one(conn, _NEW_CONVERSATION, (title, now, now))[0]
        return Conversation(cid, title, now, now)

    def conversation(self, conversation_id: int) -> Conversation | None:
        rows = self._query(f"SELECT {rowmap.CONVERSATION_COLUMNS} FROM conversations WHERE id = %s",
                           (conversation_id,))
        return rowmap.conversation_from_row(rows[0]) if rows else None

    def conversations(self) -> list[Conversation]:
        rows = self._query(
            f"SELECT {rowmap.CONVERSATION_COLUMNS} FROM conversations ORDER BY updated_at DESC, id DESC"
        )
        return [rowmap.conversation_from_row(r) for r in rows]

    def rename_conversation(self, conversation_id: int, title: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE conversations SET title = %s, updated_at = %s WHERE id = %s",
                         (title, time.time(), conversation_id))

    def delete_conversation(self, conversation_id: int) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM conversations WHERE id = %s", (conversation_id,))

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
        with self._transaction() as conn:
            mid = _one(conn, f"{_NEW_MESSAGE} RETURNING id",
                       rowmap.message_values(conversation_id, role, pg_text(content), citations,
                                             status, meta, now))[0]
            conn.execute("UPDATE conversations SET updated_at = %s WHERE id = %s",
                         (now, conversation_id))
        return rowmap.new_message(mid, conversation_id, role, content, citations, status, now, meta)

    def update_message(
        self,
        message_id: int,
        content: str,
        citations: Sequence[dict[str, Any]] | None = None,
        status: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        changes = rowmap.message_changes(pg_text(content), citations, status, meta)
        sets = ", ".join(f"{column} = %s" for column, _ in changes)
        with self._transaction() as conn:
            conn.execute(f"UPDATE messages SET {sets} WHERE id = %s",
                         (*(value for _, value in changes), message_id))

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self._query(
            f"SELECT {rowmap.MESSAGE_COLUMNS} FROM messages WHERE conversation_id = %s ORDER BY id",
            (conversation_id,),
        )
        return [rowmap.message_from_row(r) for r in rows]

    # --- health -----------------------------------------------------------------------------

    def status(self) -> StoreStatus:
        with self._transaction() as conn:
            row = _one(
                conn,
                "SELECT (SELECT coalesce(max(version), 0) FROM schema_migrations),"
                " (SELECT count(*) FROM collections),"
                " (SELECT count(*) FROM documents WHERE status = 'indexed'),"
                " (SELECT count(*) FROM documents WHERE status != 'indexed'),"
                " (SELECT chunks FROM keyword_stats), (SELECT count(*) FROM conversations),"
                " (SELECT count(*) FROM messages),"
                " (SELECT coalesce(sum(length(data)), 0) FROM originals),"
                " pg_database_size(current_database())",
            )
        (schema, collections, documents, failed, chunks, conversations, messages, originals,
         size) = (int(v) for v in row)
        return StoreStatus(schema, collections, documents, failed, chunks, conversations,
                           messages, originals, size, vector_space=self.vector_space(),
                           kdf={k: v for k, v in self._params.to_json().items() if k != "salt"})

    # --- LAN sharing ------------------------------------------------------------------------

    def create_token(self, name: str, token_hash: str, collections: Sequence[str] | None = None,
                     admin: bool = False) -> ApiToken:
        now = time.time()
        try:
            with self._transaction() as conn:
                tid = _one(
                    conn,
                    "INSERT INTO api_tokens(name, token_hash, collections, admin, created_at)"
                    " VALUES (%s, %s, %s, %s, %s) RETURNING id",
                    (name, token_hash, rowmap.scope_json(collections), bool(admin), now),
                )[0]
        except psycopg.errors.UniqueViolation:
            raise RagdeskError(f"a token named {name!r} already exists; revoke it first") from None
        return ApiToken(tid, name, token_hash, rowmap.scope(collections), admin, now)

    def tokens(self, include_revoked: bool = False) -> list[ApiToken]:
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._query(f"SELECT {rowmap.TOKEN_COLUMNS} FROM api_tokens{where} ORDER BY name, id")
        return [rowmap.token_from_row(r) for r in rows]

    def revoke_token(self, name: str) -> bool:
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE api_tokens SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL",
                (time.time(), name),
            )
            return cur.rowcount > 0

    def server_identity(self) -> tuple[str, str] | None:
        rows = self._query("SELECT cert_pem, key_pem FROM server_identity WHERE id = 1")
        if not rows:
            return None
        key_pem = open_sealed(self._key, bytes(rows[0][1]), SERVER_KEY_AAD).decode()
        return rows[0][0], key_pem

    def set_server_identity(self, cert_pem: str, key_pem: str) -> None:
        sealed = seal(self._key, key_pem.encode(), SERVER_KEY_AAD)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO server_identity(id, cert_pem, key_pem, created_at)"
                " VALUES (1, %s, %s, %s) ON CONFLICT(id) DO UPDATE SET cert_pem ="
                " excluded.cert_pem, key_pem = excluded.key_pem, created_at = excluded.created_at",
                (cert_pem, sealed, time.time()),
            )

    # --- whole-store copies (`ragdesk migrate`): exact reads and writes that keep the times ---

    def settings(self) -> dict[str, Any]:
        """Every setting, by key, except the store's own key-derivation row."""
        rows = self._query("SELECT key, value FROM settings WHERE key != %s ORDER BY key",
                           (KDF_SETTING,))
        return {k: json.loads(v) for k, v in rows}

    def document_vectors(self, document_id: int) -> np.ndarray | None:
        if self.vector_space() is None:
            return None
        with self._transaction() as conn:
            return search.document_vectors(conn, document_id)

    def set_document_times(self, document_id: int, added_at: float, updated_at: float) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE documents SET added_at = %s, updated_at = %s WHERE id = %s",
                         (added_at, updated_at, document_id))

    def import_conversation(self, conversation: Conversation,
                            messages: Sequence[Message]) -> Conversation:
        """A conversation and its messages as they were (times, status, citations, meta), in one
        transaction; ids are new."""
        with self._transaction() as conn:
            cid = _one(conn, _NEW_CONVERSATION, (pg_text(conversation.title),
                                                 conversation.created_at,
                                                 conversation.updated_at))[0]
            with conn.cursor() as cur:
                cur.executemany(_NEW_MESSAGE, [
                    rowmap.message_values(cid, m.role, pg_text(m.content), m.citations, m.status,
                                          m.meta, m.created_at) for m in messages])
        return dataclasses.replace(conversation, id=cid)

    def import_token(self, token: ApiToken) -> ApiToken:
        """A client token as it was (hash, scope, created and revoked times); the id is new."""
        try:
            with self._transaction() as conn:
                tid = _one(
                    conn,
                    "INSERT INTO api_tokens(name, token_hash, collections, admin, created_at,"
                    " revoked_at) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (token.name, token.token_hash, rowmap.scope_json(token.collections),
                     bool(token.admin), token.created_at, token.revoked_at),
                )[0]
        except psycopg.errors.UniqueViolation:
            raise RagdeskError(f"a token named {token.name!r} or with the same secret already"
                               " exists") from None
        return dataclasses.replace(token, id=tid)
