"""Time budgets for the optional work done on each page of a paged document (layout analysis,
table detection, OCR), and what the reader tells whoever watches it.

A reader runs each optional step as ``with watch.step(page, "tables"): ...``. The watch may
refuse the step at once (it overran on this page before and the reader was restarted) or stop it
when its budget runs out (the parser process arms an alarm); either way `StepTimeout` is raised,
the reader keeps the page's plain text and records a `DegradedPage`. The base `PageWatch` does
nothing: no budgets, no reports (a document read in-process, e.g. by a test or a thread).

The watch also carries what a restarted reader resumes from: pages already read (`resume`),
steps not to try again (`skip`), and the page from which nothing more is read (`stop_at`, when
the file's own time limit ran out).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# What each step is called where a user reads it.
STEP_TEXT = {
    "layout": "layout analysis",
    "tables": "table detection",
    "ocr": "OCR",
    "pages": "reading",
    "page": "reading",
}


class StepTimeout(BaseException):
    """An optional step ran past its budget on one page, or must not be run there again.

    A BaseException, like KeyboardInterrupt: raised by an alarm anywhere inside the step, it
    must get through the libraries' own ``except Exception`` (PyMuPDF's `find_tables` turns
    any Exception into a printed message and None) to the reader, which keeps the page."""


@dataclass(frozen=True)
class StepBudget:
    """Seconds each optional step may take on one page; past it the step is skipped there."""

    layout: float = 10.0
    tables: float = 5.0
    ocr: float = 30.0

    def of(self, step: str) -> float:
        return float(getattr(self, step, 0.0) or 0.0)


@dataclass(frozen=True)
class DegradedPage:
    """One optional step not done on one page (its plain text is still indexed), or pages not
    read at all because the file's time ran out (step "pages", pages `page`..`last`)."""

    page: int  # 1-based
    step: str  # "layout" | "tables" | "ocr" | "pages"
    reason: str
    last: int = 0  # for "pages": the last page not read

    def describe(self) -> str:
        where = f"pages {self.page}-{self.last}" if self.last > self.page else f"page {self.page}"
        return f"{where}: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"page": self.page, "step": self.step, "reason": self.reason}
        if self.last > self.page:
            out["last_page"] = self.last
        return out


def overran(step: str, seconds: float) -> str:
    """The reason recorded for a step stopped by its budget."""
    if step == "layout":
        return f"layout analysis took longer than {seconds:g} s; the page's plain text is indexed"
    return f"{STEP_TEXT.get(step, step)} took longer than {seconds:g} s and was skipped"


@dataclass
class PageWatch:
    """Follows a reader through a paged document. This base runs every step without a limit."""

    resume: dict[int, Any] = field(default_factory=dict)  # 0-based page -> PageLines read before
    skip: dict[tuple[int, str], str] = field(default_factory=dict)  # (0-based page, step) -> reason
    stop_at: int | None = None  # 0-based page from which nothing is read
    stop_reason: str = ""
    degraded: list[DegradedPage] = field(default_factory=list)
    ocr_seconds: float = 0.0

    def opened(self, pages: int) -> None:
        """The document has `pages` pages."""

    def begin_page(self, page: int) -> str | None:
        """0-based `page` is about to be read; a reason if it must not be (it crashed the
        reader before)."""
        return self.skip.get((page, "page"))

    @contextlib.contextmanager
    def step(self, page: int, step: str) -> Iterator[None]:
        """Run one optional step of 0-based `page` (raises StepTimeout if it must not run)."""
        reason = self.skip.get((page, step))
        if reason is not None:
            raise StepTimeout(reason)
        yield

    def page_done(self, page: int, lines: Any) -> None:
        """0-based `page` is read (its PageLines), with whatever it lost on the way."""

    def note(self, page: int, step: str, reason: str, last: int = 0) -> None:
        """Record a degradation of 0-based `page` (once per page and step)."""
        entry = DegradedPage(page + 1, step, reason, last + 1 if last else 0)
        if not any(d.page == entry.page and d.step == step for d in self.degraded):
            self.degraded.append(entry)
