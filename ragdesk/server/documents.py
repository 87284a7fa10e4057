"""Documents an admin token uploads, added and removed through the indexer like indexed files.

What is HTTP's alone stays here: the upload's size limit and time limit, the file name a client
may give, and refusals as UploadRejected (shown to the client). Parsing (in a separate process:
a parser that crashes on a hostile file takes only its process down), embedding, storing and
the audit entry are the indexer's `add_bytes`. The bytes travel to the parser process over a
pipe; nothing is written to disk outside the vault.
"""

from __future__ import annotations

import logging
import threading
from pathlib import PurePosixPath

from ragdesk.app import Services
from ragdesk.core import extract
from ragdesk.core.indexing import Indexer
from ragdesk.core.records import Document
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.server.documents")

UPLOAD_PREFIX = "lan-upload"
PARSE_TIMEOUT = 300.0  # seconds one upload may take to read: the client is waiting


class UploadRejected(RagdeskError):
    """The file could not be indexed; the message says why (shown to the client)."""


def safe_name(filename: str) -> str:
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    if not name or name in (".", "..") or len(name) > 255 or any(ord(c) < 32 for c in name):
        raise UploadRejected("give the file's name (filename=...) without folders or control characters")
    return name


class Uploads:
    """Adds and removes documents for admin tokens; one parser process, started on first use."""

    def __init__(self, services: Services, max_bytes: int, parse_timeout: float = PARSE_TIMEOUT) -> None:
        self.services = services
        self.max_bytes = max_bytes
        self.parse_timeout = parse_timeout  # then the parser process is killed, the upload refused
        self._indexer: Indexer | None = None
        self._lock = threading.Lock()

    def _uploads_indexer(self) -> Indexer:
        with self._lock:
            if self._indexer is None:  # (the embedder loads on first use)
                self._indexer = self.services.indexer(limits=extract.Limits(max_file_bytes=self.max_bytes),
                                                      parse_timeout=self.parse_timeout)
            return self._indexer

    def close(self) -> None:
        with self._lock:
            if self._indexer is not None:
                self._indexer.close()

    def add(self, collection_name: str, filename: str, data: bytes, owner: str) -> Document:
        """Index one uploaded file into a collection (blocking: call from a worker thread)."""
        name = safe_name(filename)
        if not data:
            raise UploadRejected("the file is empty")
        try:
            return self._uploads_indexer().add_bytes(f"{UPLOAD_PREFIX}/{owner}/{name}", data, collection_name,
                                                     via="lan", token=owner)
        except extract.ExtractionError as exc:
            raise UploadRejected(str(exc)) from None

    def remove(self, document_id: int, owner: str) -> None:
        self.services.store.remove_document(document_id)
        self.services.store.audit("document removed", document_id=document_id, via="lan", token=owner)
