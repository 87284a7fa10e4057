"""What an indexing run reports: one `FileOutcome` per file, and the running `Progress` (with
the files being read right now, `Working`, and the seconds each stage took)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from ragdesk.core.extract import DegradedPage
from ragdesk.core.records import FAILED, INDEXED, UNSUPPORTED

# Outcome statuses reported per file, beside records' INDEXED, FAILED and UNSUPPORTED.
UNCHANGED = "unchanged"
REMOVED = "removed"


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: str  # indexed | unchanged | failed | unsupported | removed
    reason: str | None = None
    pages: int = 0
    chunks: int = 0
    document_id: int | None = None
    read: bool = True  # False: a failure recorded before, unchanged since, not read again
    seconds: float = 0.0  # reading it (parsing, OCR included); 0 when it was not read
    # Pages read only in part (a step past its budget, or the file's time limit): see DegradedPage.
    degraded: tuple[DegradedPage, ...] = ()


@dataclass(frozen=True)
class Working:
    """A file being read right now, and where its reader is."""

    path: str
    page: int  # 1-based page in work; 0 before the first page (or a format without pages)
    pages: int  # the document's page count; 0 while unknown
    # "reading" (a page's text) | "layout" | "tables" | "ocr" | "between pages" | "chunking"
    # (after the last page) | "finishing" (its time ran out: done from the pages read)
    step: str
    seconds: float  # since its reading began


@dataclass
class Progress:
    files_total: int = 0
    files_done: int = 0
    pages: int = 0
    chunks: int = 0
    indexed: int = 0
    unchanged: int = 0
    failed: int = 0
    unsupported: int = 0
    removed: int = 0
    bytes_read: int = 0
    started: float = field(default_factory=time.monotonic)
    current: str | None = None  # the file last taken from the parsers
    in_work: tuple[Working, ...] = ()  # the files being read now, with their page and step
    # Seconds per stage (parsing and OCR are summed over the parser processes, so they may
    # exceed the elapsed time; OCR is part of parsing).
    seconds_parsing: float = 0.0
    seconds_ocr: float = 0.0
    seconds_embedding: float = 0.0
    seconds_storing: float = 0.0
    outcome: FileOutcome | None = None
    done: bool = False
    cancelled: bool = False
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Files per second so far."""
        return self.files_done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if not self.files_done or self.files_done >= self.files_total:
            return None
        return (self.files_total - self.files_done) / self.rate

    def record(self, outcome: FileOutcome) -> None:
        self.outcome = outcome
        self.outcomes.append(outcome)
        if outcome.status == REMOVED:
            self.removed += 1
            return
        self.files_done += 1
        counter = {INDEXED: "indexed", UNCHANGED: "unchanged", FAILED: "failed",
                   UNSUPPORTED: "unsupported"}[outcome.status]
        setattr(self, counter, getattr(self, counter) + 1)
        if outcome.status == INDEXED:
            self.pages += outcome.pages
            self.chunks += outcome.chunks

    def slowest(self, n: int = 5) -> list[FileOutcome]:
        """The `n` files that took longest to read."""
        read = [o for o in self.outcomes if o.seconds > 0]
        return sorted(read, key=lambda o: o.seconds, reverse=True)[:n]

    @property
    def degraded_pages(self) -> int:
        """Pages read only in part in this run (a range of unread pages counts each page)."""
        return sum(max(d.last, d.page) - d.page + 1 for o in self.outcomes for d in o.degraded)

    def snapshot(self) -> Progress:
        return replace(self, outcomes=list(self.outcomes))
