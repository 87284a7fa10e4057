"""The parser side of indexing: one file (or uploaded bytes) -> hash, text, chunks and, for an
embedder that takes them, the chunks' token ids.

`parse` runs in a parser process (`pool.ParserPool`: fresh interpreters, memory-bounded,
ending with the process that started them, watched page by page), so a crashing or runaway
parser takes only itself down;
small plain-text files may be parsed on a thread instead (`inline_ok`). It never raises for a
bad file: the reason is in the result.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ragdesk.core import chunking, extract
from ragdesk.core.embedding import TokenCounter
from ragdesk.core.extract.garbage import UNREADABLE, garbage_pages
from ragdesk.core.indexing.options import IndexOptions
from ragdesk.core.indexing.walk import os_reason, path_text
from ragdesk.core.records import FAILED, INDEXED, UNSUPPORTED, ChunkDraft

log = logging.getLogger("ragdesk.index")

# Small files in formats read by our own Python code (plain text, Markdown, code, CSV, JSON) are
# parsed on a thread of this process: no native parser to crash, no decompression to explode, a
# bounded read. Everything else (PyMuPDF formats, zip containers, e-mail, bigger files, and a
# file whose content turns out not to be plain text) goes to a parser process.
INLINE_MAX_BYTES = 1 << 20
WORKER_MEMORY_LIMIT = 4 << 30  # a parser process may not take more than this (zip bombs, ...)


@dataclass
class Parsed:
    path: str
    size: int
    mtime: float
    content_hash: str = ""
    title: str = ""
    format: str = ""
    pages: int = 0
    chunks: list[ChunkDraft] = field(default_factory=list)
    data: bytes | None = None
    same_hash: bool = False  # bytes identical to the stored version: nothing to redo
    status: str = INDEXED
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    needs_worker: bool = False  # parsed inline: not a small plain file after all; nothing was parsed
    token_ids: list[list[int]] | None = None  # the chunks as the embedder's input, if it takes ids
    degraded: list[extract.DegradedPage] = field(default_factory=list)  # pages read only in part
    seconds: float = 0.0  # wall time reading it (in the parser pool: from hand-out to result)
    ocr_seconds: float = 0.0  # of which in OCR

    @property
    def new(self) -> bool:
        """Parsed into chunks that must be embedded and stored."""
        return self.status == INDEXED and not self.same_hash


@dataclass(frozen=True)
class ParseJob:
    path: str  # as the OS knows it (may carry surrogate escapes); for `data`, the name to store
    size: int
    mtime: float
    known_hash: str | None
    options: IndexOptions
    count_tokens: TokenCounter | None  # None: the chunker estimates
    data: bytes | None = None  # the content, when it is not read from `path` (an upload)


def inline_ok(job: ParseJob) -> bool:
    """Whether `job` may be parsed in this process (see INLINE_MAX_BYTES), going by its name
    and listed size; `parse(job, inline=True)` checks the content."""
    return job.size <= INLINE_MAX_BYTES and extract.format_by_name(Path(job.path)) in extract.PLAIN_FORMATS


def parse(job: ParseJob, inline: bool = False, watch: extract.PageWatch | None = None) -> Parsed:
    """Read, hash, extract and chunk one file. Never raises for a bad file: the reason is in
    the result. With `inline`, only a small plain-text file is parsed; for anything else the
    result says `needs_worker` (a parser process must read it). `watch` bounds and follows the
    optional work on each page (see extract/budget.py); by default it is not bounded."""
    started = time.monotonic()
    out = Parsed(path_text(job.path), job.size, job.mtime)
    watch = watch if watch is not None else extract.PageWatch()
    try:
        _parse(job, inline, watch, out)
    finally:
        out.degraded = list(watch.degraded) if out.status == INDEXED else []
        out.ocr_seconds = watch.ocr_seconds
        out.seconds = time.monotonic() - started
    return out


def _parse(job: ParseJob, inline: bool, watch: extract.PageWatch, out: Parsed) -> None:
    limits = job.options.limits
    try:
        if job.size > limits.max_file_bytes:
            raise extract.ExtractionError(extract.too_big(limits))
        if job.data is not None:
            data = job.data
        else:
            inline_cap = INLINE_MAX_BYTES if inline and limits.max_file_bytes > INLINE_MAX_BYTES else None
            with open(job.path, "rb") as f:
                data = f.read((inline_cap or limits.max_file_bytes) + 1)
            if inline_cap is not None and len(data) > inline_cap:  # it grew since it was listed
                out.needs_worker = True
                return
        if len(data) > limits.max_file_bytes:
            raise extract.ExtractionError(extract.too_big(limits))
        out.size = len(data)
        out.content_hash = hashlib.sha256(data).hexdigest()
        if job.known_hash == out.content_hash:
            out.same_hash = True
            return
        if inline and extract.detect_format(Path(job.path), data[:4096]) not in extract.PLAIN_FORMATS:
            out.needs_worker = True  # e.g. a PDF named .txt: PyMuPDF reads it, in a worker
            return
        out.data = data if job.options.keep_originals else None
        doc = extract.extract(Path(job.path), data=data, limits=limits, watch=watch)
        out.title, out.format, out.pages = doc.title, doc.format, len(doc.pages)
        out.warnings = list(doc.warnings)
        for number in garbage_pages([(page.number, page.text) for page in doc.pages]):
            watch.degraded.append(extract.DegradedPage(number, "text", UNREADABLE))
        out.chunks = chunking.chunk(
            doc,
            max_tokens=job.options.max_tokens,
            overlap_tokens=job.options.overlap_tokens,
            count_tokens=job.count_tokens,
        )
        if not out.chunks:
            raise extract.ExtractionError("no text found in the document")
        out.chunks = chunking.with_context(out.chunks, out.title or Path(out.path).stem, out.path)
        if job.count_tokens is not None:
            out.token_ids = job.count_tokens.input_ids([chunking.embedding_text(c) for c in out.chunks])
    except extract.UnsupportedFormat as exc:
        out.status, out.reason, out.chunks = UNSUPPORTED, str(exc), []
    except extract.ExtractionError as exc:
        out.status, out.reason, out.chunks = FAILED, str(exc), []
    except OSError as exc:
        out.status, out.reason, out.chunks = FAILED, os_reason(exc), []
    except MemoryError:
        out.status, out.reason, out.chunks = FAILED, "the file needs too much memory to read", []
    except Exception as exc:  # a parser bug must not stop the batch; keep it visible
        log.exception("parser failed on %s", out.path)
        out.status, out.reason, out.chunks = FAILED, f"could not be read ({type(exc).__name__}: {exc})", []
    if out.status != INDEXED:
        out.data, out.token_ids = None, None


def worker_init(parent: int) -> None:
    """Bound each parser process's memory, so a hostile file fails alone, and end it when the
    process that started it is gone (killed outright, it cannot shut its pool down)."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    # (The parent's id comes from the parent: by the time this runs it may already be gone.)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="ragdesk-parent-watch").start()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    # Polling the parent id works everywhere; Linux's PR_SET_PDEATHSIG would fire when the
    # *thread* that spawned the worker ends, which in a process pool is not the parent's end.
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)
