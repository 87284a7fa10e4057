"""Records to rows and back, the same in both stores: the columns read, how the fields kept as
JSON text (message citations and meta, audit detail, a token's collections) are written and read,
and which vectors a document's chunks may be stored with.

Each backend keeps its own SQL (placeholders, upserts, column types); what a row holds and which
record it becomes is decided here once, so that the vault and the PostgreSQL store cannot drift
apart (`ragdesk migrate` copies one into the other and compares them field by field).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ragdesk.core.records import (
    ApiToken,
    AuditEvent,
    Chunk,
    Collection,
    Conversation,
    Document,
    Message,
    VectorSpace,
)

# The columns each mapper below reads, in its order.
DOCUMENT_COLUMNS = (
    "id, collection_id, path, title, format, size, mtime, content_hash, status, error, pages,"
    " chunk_count, added_at, updated_at"
)
CHUNK_COLUMNS = (
    "id, document_id, ordinal, text, page_start, page_end, char_start, char_end, heading,"
    " page_breaks, context"
)
CONVERSATION_COLUMNS = "id, title, created_at, updated_at"
MESSAGE_COLUMNS = "id, conversation_id, role, content, citations, status, created_at, meta"
AUDIT_COLUMNS = "id, seq, at, event, detail, prev_hash, hash"  # = chain.COLUMNS
TOKEN_COLUMNS = "id, name, token_hash, collections, admin, created_at, revoked_at"

# The columns `message_values` fills, in its order (the id is the database's).
NEW_MESSAGE_COLUMNS = "conversation_id, role, content, citations, status, meta, created_at"


# --- rows -> records ----------------------------------------------------------------------------


def document_from_row(row: Sequence[Any]) -> Document:
    return Document(*row)


def chunk_from_row(row: Sequence[Any]) -> Chunk:
    (chunk_id, document_id, ordinal, text, page_start, page_end, char_start, char_end, heading,
     breaks, context) = row
    return Chunk(chunk_id, document_id, ordinal, text, page_start, page_end, char_start, char_end,
                 heading, page_breaks_from_text(breaks), context)


def page_breaks_text(breaks: Sequence[tuple[int, int]]) -> str:
    """A chunk's page breaks as stored: "offset:page,offset:page"."""
    return ",".join(f"{at}:{page}" for at, page in breaks)


def page_breaks_from_text(text: str) -> tuple[tuple[int, int], ...]:
    """`page_breaks_text` read back ('' -> no breaks)."""
    if not text:
        return ()
    pairs = (item.split(":", 1) for item in text.split(","))
    return tuple((int(at), int(page)) for at, page in pairs)


def collection_from_rows(collection_id: int, name: str,
                         folders: Sequence[Sequence[Any]]) -> Collection:
    """A collection from its name and its (folder,) rows, in their order."""
    return Collection(collection_id, name, tuple(f[0] for f in folders))


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    return Conversation(*row)


def message_from_row(row: Sequence[Any]) -> Message:
    return Message(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6],
                   json.loads(row[7]))


def audit_from_row(row: Sequence[Any]) -> AuditEvent:
    entry_id, seq, at, event, detail, prev_hash, digest = row
    return AuditEvent(entry_id, at, event, json.loads(detail), seq, prev_hash, digest)


def token_from_row(row: Sequence[Any]) -> ApiToken:
    return ApiToken(row[0], row[1], row[2], scope_from_json(row[3]), bool(row[4]), row[5], row[6])


# --- records -> column values -------------------------------------------------------------------


def scope(collections: Sequence[str] | None) -> tuple[str, ...] | None:
    """A token's collections as its record holds them; None is every collection."""
    return tuple(collections) if collections is not None else None


def scope_json(collections: Sequence[str] | None) -> str | None:
    """A token's collections as stored: a JSON list, or NULL for every collection."""
    return json.dumps(list(collections)) if collections is not None else None


def scope_from_json(text: str | None) -> tuple[str, ...] | None:
    return scope(json.loads(text)) if text is not None else None


def detail_json(detail: dict[str, Any]) -> str:
    """An audit entry's detail as stored; what JSON cannot hold is kept as its str()."""
    return json.dumps(detail, default=str)


def audit_values(events: Sequence[tuple[float, str, dict[str, Any]]]) -> list[tuple[float, str, str]]:
    """(at, event, detail) rows for `INSERT INTO audit_log(at, event, detail)`."""
    return [(at, event, detail_json(detail)) for at, event, detail in events]


def citations_json(citations: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(citations))


def meta_json(meta: dict[str, Any] | None) -> str:
    return json.dumps(meta or {})


def message_values(conversation_id: int, role: str, content: str,
                   citations: Sequence[dict[str, Any]], status: str,
                   meta: dict[str, Any] | None, created_at: float) -> tuple[Any, ...]:
    """A new message's values in the order of NEW_MESSAGE_COLUMNS. `content` as the backend
    stores it (PostgreSQL's has no NUL)."""
    return (conversation_id, role, content, citations_json(citations), status, meta_json(meta),
            created_at)


def new_message(message_id: int, conversation_id: int, role: str, content: str,
                citations: Sequence[dict[str, Any]], status: str, created_at: float,
                meta: dict[str, Any] | None) -> Message:
    """The record of a message just added, as `message_from_row` would read it back."""
    return Message(message_id, conversation_id, role, content, list(citations), status,
                   created_at, dict(meta or {}))


def vectors_to_store(chunk_count: int, vectors: np.ndarray | None,
                     space: Callable[[], VectorSpace | None], store: str) -> np.ndarray | None:
    """The vectors `put_document` stores with its chunks, None for none; a ValueError when they
    do not fit the chunks or the store's vector space (`space` is asked only when there are
    vectors to store). `store` names the backend in the message ("vault", "store")."""
    if vectors is not None and len(vectors) != chunk_count:
        raise ValueError(f"{chunk_count} chunks but {len(vectors)} vectors")
    if vectors is None or not chunk_count:
        return None
    found = space()
    if found is None:
        raise ValueError(f"set the {store}'s vector space before storing vectors")
    if vectors.shape[1] != found.dimension:
        raise ValueError(
            f"vectors have {vectors.shape[1]} dimensions, the {store} {found.dimension}")
    return vectors


def message_changes(content: str, citations: Sequence[dict[str, Any]] | None, status: str | None,
                    meta: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """(column, value) of what `update_message` changes: the content always, each other field
    only when given. `content` as the backend stores it."""
    changes: list[tuple[str, Any]] = [("content", content)]
    if citations is not None:
        changes.append(("citations", citations_json(citations)))
    if status is not None:
        changes.append(("status", status))
    if meta is not None:
        changes.append(("meta", meta_json(meta)))
    return changes
