"""The Store protocol: the narrow interface every backend implements and every service uses.

Services above this line never build SQL, never see a cursor and never know which backend they
talk to. Vectors cross it as float32 numpy arrays, normalised to unit length by the embedder.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Protocol

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


def matching_token(tokens: Sequence[ApiToken], token_hash: str) -> ApiToken | None:
    """The token with this hash, every one compared in constant time (what `verify_token`
    does in every store)."""
    import hmac

    found = None
    for token in tokens:
        if hmac.compare_digest(token.token_hash.encode(), token_hash.encode()):
            found = token
    return found


class Store(Protocol):
    # --- lifecycle ------------------------------------------------------------------------
    def close(self) -> None: ...

    # --- settings (JSON values) -----------------------------------------------------------
    def get_setting(self, key: str, default: Any = None) -> Any: ...
    def set_setting(self, key: str, value: Any) -> None: ...

    # --- audit log (append-only) ----------------------------------------------------------
    def audit(self, event: str, **detail: Any) -> None: ...
    def audit_events(self, limit: int = 100) -> list[AuditEvent]: ...

    # --- collections ----------------------------------------------------------------------
    def collection(self, name: str, create: bool = True) -> Collection | None: ...
    def collections(self) -> list[Collection]: ...
    def add_folder(self, collection_id: int, folder: str) -> None: ...

    # --- documents ------------------------------------------------------------------------
    def document(self, document_id: int) -> Document | None: ...
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

    # --- chunks and search ----------------------------------------------------------------
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

    # --- conversations --------------------------------------------------------------------
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

    # --- health ---------------------------------------------------------------------------
    def status(self) -> StoreStatus: ...

    # --- LAN sharing ----------------------------------------------------------------------
    def create_token(self, name: str, token_hash: str, collections: Sequence[str] | None = None,
                     admin: bool = False) -> ApiToken: ...
    def tokens(self, include_revoked: bool = False) -> list[ApiToken]: ...
    def revoke_token(self, name: str) -> bool: ...
    def verify_token(self, token_hash: str) -> ApiToken | None:
        """The active token with this SHA-256 hash, compared in constant time."""
        ...

    def server_identity(self) -> tuple[str, str] | None:
        """(certificate PEM, private key PEM); the key is kept only here, encrypted."""
        ...

    def set_server_identity(self, cert_pem: str, key_pem: str) -> None: ...
    def audit_many(self, events: Sequence[tuple[float, str, dict[str, Any]]]) -> None:
        """Append (time, event, detail) entries in one transaction."""
        ...

    # --- whole-store copies (`ragdesk migrate`) --------------------------------------------
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
