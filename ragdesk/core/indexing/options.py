"""How an indexing run is set up: the collection, chunk sizes, the reader's limits, parallelism."""

from __future__ import annotations

from dataclasses import dataclass, field

from ragdesk.core import extract

DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class IndexOptions:
    collection: str = DEFAULT_COLLECTION
    max_tokens: int = 256
    overlap_tokens: int = 32
    limits: extract.Limits = field(default_factory=extract.Limits)
    workers: int | None = None  # parser processes; None = one per core less one (at least 1); 0 = in-process
    keep_originals: bool = True
    parse_timeout: float = 600.0  # seconds one file may take to read (OCR of a long scan is slow)
    # Read unchanged files that failed before again (else only when the cause may have gone).
    retry_failed: bool = False
