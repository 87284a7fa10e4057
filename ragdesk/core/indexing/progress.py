"""What an indexing run reports: one `FileOutcome` per file, and the running `Progress`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

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
    current: str | None = None
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

    def snapshot(self) -> Progress:
        return replace(self, outcomes=list(self.outcomes))
