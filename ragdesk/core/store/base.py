"""The Store protocol, in roles: what every backend implements and what each service may ask of it.

Services above this line never build SQL, never see a cursor and never know which backend they
talk to. Each declares the narrow role it uses (the retriever a `Corpus`, a chat its
`ChatHistory`, the token registry `Sharing`, ...); a backend implements them all, as `Store`.
Vectors cross this line as float32 numpy arrays, normalised to unit length by the embedder.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator, Sequence
from typing import Any, Protocol, Self

import numpy as np

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
from ragdesk.core.store.chain import Head, Pruned, Verdict
from ragdesk.core.store.keys import KdfParams


def matching_token(tokens: Sequence[ApiToken], token_hash: str) -> ApiToken | None:
    """The token with this SHA-256 hash, or None: the one check of a presented token. Every token
    is compared in constant time, so timing says nothing about which (or whether one) nearly
    matched."""
    found = None
    for token in tokens:
        if hmac.compare_digest(token.token_hash.encode(), token_hash.encode()):
            found = token
    return found


# --- roles ----------------------------------------------------------------------------------------


class Settings(Protocol):
    """Settings by key, JSON values (the chat model, the embedder choice, ...)."""

    def get_setting(self, key: str, default: Any = None) -> Any: ...
    def set_setting(self, key: str, value: Any) -> None: ...


class AuditLog(Protocol):
    """The append-only audit log, hash-chained (chain.py): verified, anchored, pruned behind a
    checkpoint."""

    def audit(self, event: str, **detail: Any) -> None: ...
    def audit_events(self, limit: int = 100) -> list[AuditEvent]:
        """The newest `limit` entries, newest first."""
        ...

    def audit_many(self, events: Sequence[tuple[float, str, dict[str, Any]]]) -> None:
        """Append (time, event, detail) entries in one transaction."""
        ...

    def audit_since(self, since: float) -> Iterator[AuditEvent]:
        """Entries written at or after `since` (epoch seconds), oldest first."""
        ...

    def audit_head(self) -> Head | None: ...
    def verify_audit(self, anchor: Head | None = None) -> Verdict:
        """Walk the chain; the verdict names the first entry changed, deleted, inserted or moved,
        or an anchor the log no longer contains."""
        ...

    def prune_audit(self, before: float) -> Pruned | None:
        """Remove the entries older than `before` and leave a checkpoint (an intact log only)."""
        ...


class Library(Protocol):
    """Collections, their documents and the documents' original bytes."""

    def collection(self, name: str, create: bool = True) -> Collection | None: ...
    def collections(self) -> list[Collection]: ...
    def add_folder(self, collection_id: int, folder: str) -> None: ...
    def document(self, document_id: int) -> Document | None: ...
    def documents_by_id(self, document_ids: Sequence[int]) -> dict[int, Document]:
        """The documents of these ids that exist, in one query (a search's hits)."""
        ...
    def document_by_path(self, collection_id: int, path: str) -> Document | None: ...
    def documents(self, collection_id: int | None = None) -> list[Document]: ...
    def put_document(
        self,
        info: DocumentInfo,
        chunks: Sequence[ChunkDraft],
        vectors: np.ndarray | None,
        original: bytes | None,
    ) -> Document:
        """Store a document with its chunks, vectors and original bytes in one transaction,
        replacing any document at the same (collection, path). Nothing is half-written."""
        ...

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Writes made inside commit together, in one transaction (an indexer stores many
        documents per commit). Each call inside stays whole or absent: one that fails is undone
        alone; a crash before the end loses the batch's writes, never a part of one of them."""
        ...

    def touch_document(self, document_id: int, mtime: float) -> None: ...
    def remove_document(self, document_id: int) -> None: ...
    def original(self, document_id: int) -> bytes | None: ...


class SearchIndex(Protocol):
    """The documents' chunks, searched by keyword and by vector, and the vector space."""

    def chunks(self, chunk_ids: Sequence[int]) -> list[Chunk]: ...
    def document_chunks(self, document_id: int) -> list[Chunk]: ...
    def keyword_search(
        self, query: str, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, score) best first; `query` is what the user typed, made safe here."""
        ...

    def vector_search(
        self, vector: np.ndarray, k: int, collection_ids: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine distance) nearest first."""
        ...

    def vector_space(self) -> VectorSpace | None: ...
    def set_vector_space(self, space: VectorSpace) -> None: ...


class Conversations(Protocol):
    """The owner's conversations and their messages."""

    def create_conversation(self, title: str) -> Conversation: ...
    def conversation(self, conversation_id: int) -> Conversation | None: ...
    def conversations(self) -> list[Conversation]: ...
    def rename_conversation(self, conversation_id: int, title: str) -> None: ...
    def delete_conversation(self, conversation_id: int) -> None: ...
    def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str,
        citations: Sequence[dict[str, Any]] = (),
        status: str = "complete",
        meta: dict[str, Any] | None = None,
    ) -> Message: ...
    def update_message(
        self,
        message_id: int,
        content: str,
        citations: Sequence[dict[str, Any]] | None = None,
        status: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None: ...
    def messages(self, conversation_id: int) -> list[Message]: ...


class Tokens(Protocol):
    """LAN sharing: client tokens (only their SHA-256 is kept) and the server's TLS identity.
    A presented token is checked with `matching_token` over `tokens()`."""

    def create_token(self, name: str, token_hash: str, collections: Sequence[str] | None = None,
                     admin: bool = False) -> ApiToken: ...
    def tokens(self, include_revoked: bool = False) -> list[ApiToken]: ...
    def revoke_token(self, name: str) -> bool: ...
    def server_identity(self) -> tuple[str, str] | None:
        """(certificate PEM, private key PEM); the key is kept only here, encrypted."""
        ...

    def set_server_identity(self, cert_pem: str, key_pem: str) -> None: ...


class Transferable(Protocol):
    """Exact reads and writes that keep times and hashes, for whole-store copies (transfer.py,
    `ragdesk migrate`)."""

    def settings(self) -> dict[str, Any]:
        """Every setting by key; never the store's own key material."""
        ...

    def document_vectors(self, document_id: int) -> np.ndarray | None:
        """float32 rows in chunk order, as stored (the PostgreSQL store keeps halfvec); None if
        the document has no chunks or not every chunk has a vector."""
        ...

    def set_document_times(self, document_id: int, added_at: float, updated_at: float) -> None: ...
    def import_conversation(self, conversation: Conversation,
                            messages: Sequence[Message]) -> Conversation:
        """The conversation and its messages with their own times, in one transaction."""
        ...

    def import_token(self, token: ApiToken) -> ApiToken:
        """A token with its own hash, scope and times; a clash raises RagdeskError."""
        ...


# --- what a backend is, and the roles services combine ----------------------------------------------


class Store(Settings, AuditLog, Library, SearchIndex, Conversations, Tokens, Transferable, Protocol):
    """A whole backend: every role, and its lifecycle and health."""

    @property
    def backend(self) -> str:
        """Which backend this is: "vault" (encrypted SQLite) or "postgresql"."""
        ...

    def status(self) -> StoreStatus: ...
    def change_passphrase(self, new_passphrase: str, kdf: KdfParams | None = None) -> None:
        """Re-key the store under a new passphrase: a crash leaves the old key or the new one."""
        ...

    def close(self) -> None: ...
    def lock(self) -> None:
        """Close every connection and wipe the key from memory (until opened again)."""
        ...

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...


class Corpus(Library, SearchIndex, Protocol):
    """The documents and their index: a search hit is a chunk of a document."""


class ChatHistory(Conversations, AuditLog, Protocol):
    """What a chat writes: its conversation, and the audit entry of each question."""


class Sharing(Tokens, AuditLog, Protocol):
    """Tokens and the server identity with the audit entries of their changes, and the
    collections a token's scope names."""

    def collections(self) -> list[Collection]: ...
