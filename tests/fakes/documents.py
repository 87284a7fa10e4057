"""Documents put straight into a store for tests: pages of text as one document each, embedded
by the deterministic fake embedder, without parsing a file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ragdesk.core.records import ChunkDraft, DocumentInfo, VectorSpace
from ragdesk.core.store.base import Store
from tests.fakes.embedder import HashEmbedder

Pages = Sequence[tuple[int, str]]  # (page number, the page's text)


def put_documents(store: Store, docs: Mapping[str, Pages] | Mapping[tuple[str, str], Pages],
                  embedder: HashEmbedder | None = None) -> None:
    """Each path's pages as one chunk per page; a key may be a path (collection "default") or a
    (collection, path) pair. Sets the store's vector space to the embedder's."""
    emb = embedder or HashEmbedder()
    store.set_vector_space(VectorSpace(emb.name, emb.dimension))
    for key, pages in docs.items():
        collection, path = key if isinstance(key, tuple) else ("default", key)
        coll = store.collection(collection)
        assert coll is not None
        chunks = [ChunkDraft(text, page, page, 0, len(text), "") for page, text in pages]
        info = DocumentInfo(coll.id, path, path.rsplit("/", 1)[1], "pdf", 100, 1.0,
                            hashlib.sha256(path.encode()).hexdigest(), pages=len(pages))
        store.put_document(info, chunks, emb.embed([c.text for c in chunks]), b"original")
