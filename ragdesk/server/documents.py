"""Documents an admin token uploads: parsed in a separate process, stored like indexed files.

The bytes travel to the parser process over a pipe and come back as chunks; nothing is written
to disk outside the vault. A parser that crashes on a hostile file takes only its process down.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ragdesk.app import Services
from ragdesk.core import chunking, extract
from ragdesk.core.indexing import IndexOptions, TokenCounter, parser_pool
from ragdesk.core.records import INDEXED, ChunkDraft, Document, DocumentInfo, VectorSpace
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.server.documents")

UPLOAD_PREFIX = "lan-upload"


class UploadRejected(RagdeskError):
    """The file could not be indexed; the message says why (shown to the client)."""


def parse_upload(name: str, data: bytes, max_tokens: int, overlap_tokens: int,
                 count_tokens: Callable[[str], int] | None, max_bytes: int) -> tuple[str, str, int, list[ChunkDraft]]:
    """(title, format, pages, chunks) of an uploaded file; runs in the parser process."""
    doc = extract.extract(Path(name), data=data, limits=extract.Limits(max_file_bytes=max_bytes))
    chunks = chunking.chunk(doc, max_tokens=max_tokens, overlap_tokens=overlap_tokens,
                            count_tokens=count_tokens)
    if not chunks:
        raise extract.ExtractionError("no text found in the document")
    return doc.title, doc.format, len(doc.pages), chunks


def safe_name(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    if not name or name in (".", "..") or len(name) > 255 or any(ord(c) < 32 for c in name):
        raise UploadRejected("give the file's name (filename=...) without folders or control characters")
    return name


class Uploads:
    """Adds and removes documents for admin tokens; one parser process, started on first use."""

    def __init__(self, services: Services, max_bytes: int) -> None:
        self.services = services
        self.max_bytes = max_bytes
        self.options = IndexOptions()
        self._pool: cf.ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _parser(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = parser_pool(1)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None

    def add(self, collection_name: str, filename: str, data: bytes, owner: str) -> Document:
        """Index one uploaded file into a collection (blocking: call from a worker thread)."""
        name = safe_name(filename)
        if not data:
            raise UploadRejected("the file is empty")
        store = self.services.store
        embedder = self.services.embedder
        model_dir = getattr(embedder, "model_dir", None)
        counter = TokenCounter(str(Path(model_dir) / "tokenizer.json")) \
            if model_dir is not None and (Path(model_dir) / "tokenizer.json").is_file() else None
        try:
            title, fmt, pages, chunks = self._parser().submit(
                parse_upload, name, data, self.options.max_tokens, self.options.overlap_tokens,
                counter, self.max_bytes).result(timeout=300)
        except (extract.ExtractionError, extract.UnsupportedFormat) as exc:
            raise UploadRejected(str(exc)) from None
        except cf.process.BrokenProcessPool:
            self.close()
            raise UploadRejected("the reader crashed on this file (damaged or hostile content)") from None
        except cf.TimeoutError:
            self.close()
            raise UploadRejected("reading the file took too long") from None
        wanted = VectorSpace(embedder.name, embedder.dimension)
        current = store.vector_space()
        if current is None:
            store.set_vector_space(wanted)
        elif current != wanted:
            raise RagdeskError(f"this vault's vectors were made by {current.embedder}; "
                               f"re-embed it before adding documents with {wanted.embedder}")
        vectors = embedder.embed([c.text for c in chunks])
        collection = store.collection(collection_name)
        assert collection is not None
        info = DocumentInfo(collection.id, f"{UPLOAD_PREFIX}/{owner}/{name}", title or Path(name).stem,
                            fmt, len(data), time.time(), hashlib.sha256(data).hexdigest(),
                            pages=pages, status=INDEXED)
        doc = store.put_document(info, chunks, vectors, data)
        store.audit("document added", document_id=doc.id, chunks=len(chunks), via="lan", token=owner)
        return doc

    def remove(self, document_id: int, owner: str) -> None:
        self.services.store.remove_document(document_id)
        self.services.store.audit("document removed", document_id=document_id, via="lan", token=owner)
