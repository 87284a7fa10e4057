"""Ordered, named schema migrations for the encrypted SQLite vault.

`PRAGMA user_version` holds the number of migrations applied. A vault whose version is higher than
this release knows was written by a newer RagDesk: it is refused before anything is written.
Each migration runs in one transaction together with the version bump, so a crash leaves the
vault at the old or the new version, never between.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import sqlcipher3

from ragdesk.core.store.sqlite import auditlog
from ragdesk.errors import VaultTooNew

log = logging.getLogger("ragdesk.store")

# The FTS5 index reads chunk text from `chunks` (external content) and is kept in step by
# triggers; `secure_delete` (set on every connection) zeroes what is removed.
M001_INITIAL = """
CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at REAL NOT NULL
);
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE collections (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE collection_folders (
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    folder        TEXT NOT NULL,
    PRIMARY KEY (collection_id, folder)
);
CREATE TABLE documents (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
    path          TEXT NOT NULL,
    title         TEXT NOT NULL,
    format        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mtime         REAL NOT NULL,
    content_hash  TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('indexed', 'failed', 'unsupported')),
    error         TEXT,
    pages         INTEGER NOT NULL DEFAULT 0,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    added_at      REAL NOT NULL,
    updated_at    REAL NOT NULL,
    UNIQUE (collection_id, path)
);
CREATE INDEX documents_hash ON documents(content_hash);
CREATE TABLE originals (
    document_id INTEGER PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
    data        BLOB NOT NULL
);
CREATE TABLE chunks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ordinal     INTEGER NOT NULL,
    text        TEXT NOT NULL,
    page_start  INTEGER NOT NULL,
    page_end    INTEGER NOT NULL,
    char_start  INTEGER NOT NULL,
    char_end    INTEGER NOT NULL,
    heading     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX chunks_document ON chunks(document_id, ordinal);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
        VALUES ('delete', old.id, old.text, old.heading);
END;
CREATE TRIGGER chunks_fts_update AFTER UPDATE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
        VALUES ('delete', old.id, old.text, old.heading);
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TABLE vector_space (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    embedder   TEXT NOT NULL,
    dimension  INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY,
    title      TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content         TEXT NOT NULL,
    citations       TEXT NOT NULL DEFAULT '[]',
    status          TEXT NOT NULL,
    meta            TEXT NOT NULL DEFAULT '{}',
    created_at      REAL NOT NULL
);
CREATE INDEX messages_conversation ON messages(conversation_id, id);
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    event  TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""

# LAN sharing: client tokens (only their SHA-256 is kept; a revoked name may be reused) and the
# server's TLS identity, whose private key lives here and nowhere else.
M002_SERVER = """
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    collections TEXT,
    admin       INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    revoked_at  REAL
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens(name) WHERE revoked_at IS NULL;
CREATE TABLE server_identity (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem   TEXT NOT NULL,
    key_pem    TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

# Chunks that know where they are (issue 16): `context` (the document's title and heading path,
# and the joined forms of version numbers: searched, never shown) becomes a third keyword column;
# `page_breaks` ("offset:page,...") says where later pages begin in a chunk's text, so a hit
# names the page its best-matching words are on. Chunks indexed before keep '' in both (the
# indexer re-reads their files: chunks_outdated_before in core/indexing/pipeline.py).
M_CHUNK_CONTEXT = """
ALTER TABLE chunks ADD COLUMN context TEXT NOT NULL DEFAULT '';
ALTER TABLE chunks ADD COLUMN page_breaks TEXT NOT NULL DEFAULT '';
DROP TRIGGER chunks_fts_insert;
DROP TRIGGER chunks_fts_delete;
DROP TRIGGER chunks_fts_update;
DROP TABLE chunks_fts;
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    text, heading, context, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading, context)
        VALUES (new.id, new.text, new.heading, new.context);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading, context)
        VALUES ('delete', old.id, old.text, old.heading, old.context);
END;
CREATE TRIGGER chunks_fts_update AFTER UPDATE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading, context)
        VALUES ('delete', old.id, old.text, old.heading, old.context);
    INSERT INTO chunks_fts(rowid, text, heading, context)
        VALUES (new.id, new.text, new.heading, new.context);
END;
INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');
INSERT INTO settings(key, value)
    SELECT 'chunks_outdated_before', CAST((julianday('now') - 2440587.5) * 86400.0 AS TEXT)
    WHERE EXISTS (SELECT 1 FROM documents);
"""

# (name, SQL script, or a function of the connection for a step SQL alone cannot do, such as
# chaining the audit log: auditlog.chain_existing). Append only: never edit or reorder a migration
# that has shipped.
MIGRATIONS: list[tuple[str, str | Callable[[sqlcipher3.Connection], None]]] = [
    ("m001_initial", M001_INITIAL),
    ("m002_server", M002_SERVER),
    ("m003_chunk_context", M_CHUNK_CONTEXT),
    ("m004_audit_chain", auditlog.chain_existing),
    ("m005_audit_chain_by_row_id", auditlog.rechain_interim),
]

SCHEMA_VERSION = len(MIGRATIONS)

def check_version(found: int) -> None:
    """Refuse a vault whose schema is newer than this release knows (VaultTooNew)."""
    if found > SCHEMA_VERSION:
        raise VaultTooNew(
            f"this vault was written by a newer RagDesk (schema {found}, this release knows "
            f"{SCHEMA_VERSION}); it was not opened or changed. Please update RagDesk."
        )


def migrate(connection: sqlcipher3.Connection, found: int) -> int:
    """Apply the migrations after `found`; return the new version. `connection` is autocommit."""
    check_version(found)
    for version, (name, script) in enumerate(MIGRATIONS, start=1):
        if version <= found:
            continue
        log.info("applying migration %s", name)
        if callable(script):
            _run_step(connection, version, name, script)
            continue
        connection.executescript(
            "BEGIN IMMEDIATE;\n"
            + script
            + f"\nINSERT INTO schema_migrations(version, name, applied_at)"
            f" VALUES ({version}, '{name}', {time.time()!r});"
            f"\nPRAGMA user_version = {version};\nCOMMIT;"
        )
    return SCHEMA_VERSION


def _run_step(connection: sqlcipher3.Connection, version: int, name: str,
              step: Callable[[sqlcipher3.Connection], None]) -> None:
    """A migration made by a function, in one transaction with its version bump."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        step(connection)
        connection.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                           (version, name, time.time()))
        connection.execute(f"PRAGMA user_version = {version}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
