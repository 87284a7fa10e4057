"""Records passed between the layers: plain dataclasses, no behaviour beyond small helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Document status values.
INDEXED = "indexed"
FAILED = "failed"
UNSUPPORTED = "unsupported"


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    folders: tuple[str, ...] = ()


@dataclass(frozen=True)
class Document:
    id: int
    collection_id: int
    path: str
    title: str
    format: str
    size: int
    mtime: float
    content_hash: str
    status: str
    error: str | None
    pages: int
    chunks: int
    added_at: float
    updated_at: float


@dataclass(frozen=True)
class DocumentInfo:
    """What the indexer knows of a file before it is stored (the store assigns id and times)."""

    collection_id: int
    path: str
    title: str
    format: str
    size: int
    mtime: float
    content_hash: str
    pages: int = 0
    status: str = INDEXED
    error: str | None = None


# --- extraction -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A structural piece of one page: offsets index into that page's text."""

    page: int  # 1-based
    start: int
    end: int
    kind: str  # "heading" | "paragraph" | "table" | "code" | "list"
    level: int = 0  # heading level (1 = top); 0 for non-headings


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    text: str


@dataclass
class Extracted:
    """A file turned into text: its pages, and the structure found in them."""

    title: str
    format: str
    pages: list[Page]
    blocks: list[Block] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- chunks and hits --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkDraft:
    """A chunk before it is stored: text plus where it came from."""

    text: str
    page_start: int
    page_end: int
    char_start: int  # offset into the text of page_start
    char_end: int  # offset into the text of page_end
    heading: str = ""  # heading path, " > " joined
    # Where later pages begin in `text`: ((offset, page), ...) for a chunk over a page break.
    page_breaks: tuple[tuple[int, int], ...] = ()
    # Searched but never shown: the document's title and the heading path, and the joined forms
    # of the chunk's version numbers (chunking.search_context).
    context: str = ""


@dataclass(frozen=True)
class Chunk:
    id: int
    document_id: int
    ordinal: int
    text: str
    page_start: int
    page_end: int
    char_start: int
    char_end: int
    heading: str
    page_breaks: tuple[tuple[int, int], ...] = ()  # as ChunkDraft's
    context: str = ""  # as ChunkDraft's


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    document_id: int
    collection_id: int
    path: str
    title: str
    page: int
    char_start: int
    char_end: int
    score: float
    text: str
    heading: str = ""
    snippet: str = ""
    marks: tuple[tuple[int, int], ...] = ()  # spans of matching terms within `snippet`


# --- conversations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: str  # "user" | "assistant"
    content: str
    citations: list[dict[str, Any]]
    status: str  # "complete" | "stopped" | "failed" | "streaming" (chat.COMPLETE, ...)
    created_at: float
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: float
    event: str
    detail: dict[str, Any]
    seq: int = 0  # its place in the hash chain (core/store/chain.py)
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True)
class VectorSpace:
    """Which embedder made a vault's vectors, and their dimension."""

    embedder: str
    dimension: int


@dataclass(frozen=True)
class StoreStatus:
    schema_version: int
    collections: int
    documents: int
    failed_documents: int
    chunks: int
    conversations: int
    messages: int
    originals_bytes: int
    database_bytes: int
    vector_space: VectorSpace | None
    kdf: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiToken:
    """A LAN client's bearer token as a store keeps it: only the SHA-256 of the secret."""

    id: int
    name: str
    token_hash: str
    collections: tuple[str, ...] | None  # None: every collection
    admin: bool
    created_at: float
    revoked_at: float | None = None
