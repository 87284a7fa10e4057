"""How an indexing run is set up: the collection, chunk sizes, the reader's limits, parallelism."""

from __future__ import annotations

from dataclasses import dataclass, field

from ragdesk.core import extract

DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class FileLimit:
    """The last resort for one file read in a parser process: how long it may take, scaled by
    its size and pages (and by the pages given to OCR, slow by nature); pages read before it
    ran out are kept. Never more than the options' `parse_timeout`."""

    base: float = 30.0
    per_page: float = 1.0
    per_mb: float = 2.0
    per_ocr_page: float = 20.0

    def seconds(self, size: int, pages: int, ocr_pages: int, cap: float) -> float:
        scaled = (self.base + self.per_page * pages + self.per_mb * size / (1 << 20)
                  + self.per_ocr_page * ocr_pages)
        return min(cap, scaled)


@dataclass(frozen=True)
class IndexOptions:
    collection: str = DEFAULT_COLLECTION
    max_tokens: int = 256
    overlap_tokens: int = 32
    limits: extract.Limits = field(default_factory=extract.Limits)
    workers: int | None = None  # parser processes; None = one per core less one (at least 1); 0 = in-process
    keep_originals: bool = True
    parse_timeout: float = 600.0  # the most seconds one file may take to read, however long
    budget: extract.StepBudget = field(default_factory=extract.StepBudget)  # per page and step
    file_limit: FileLimit = field(default_factory=FileLimit)  # per file, below parse_timeout
    # Read unchanged files that failed before again (else only when the cause may have gone).
    retry_failed: bool = False
