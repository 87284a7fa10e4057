"""Files and folders -> documents, chunks, vectors and keyword entries in the store.

`Indexer.run(paths)` is a generator of `Progress`: the caller shows it (a progress bar on the
command line, a worker signal in the GUI) and may cancel between steps. The work overlaps:
files are read, hashed, extracted and chunked beside the embedding -- small plain-text files on
a thread of this process, everything else in worker processes (memory-bounded, killed if they
hang, keeping a crashing parser away from the vault) -- and a writer thread stores documents
as soon as their chunks are embedded, those completed together in one commit (`Store.batch`).
A document is never split across transactions, so a kill at any moment leaves every document
whole or absent, and a document is reported indexed only once committed.

Idempotent: a file whose size and mtime are unchanged is not even read; one whose bytes hash to
what is stored is not parsed again; a changed file replaces its old version atomically. A file
that fails now keeps what was indexed of it before.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import functools
import hashlib
import logging
import multiprocessing
import os
import stat
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ragdesk.core import chunking, extract
from ragdesk.core.embedding import Embedder
from ragdesk.core.records import (
    FAILED,
    INDEXED,
    UNSUPPORTED,
    ChunkDraft,
    Document,
    DocumentInfo,
    VectorSpace,
)
from ragdesk.core.store.base import Store
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.index")

# Outcome statuses reported per file.
UNCHANGED = "unchanged"
REMOVED = "removed"

DEFAULT_COLLECTION = "default"
# Chunks gathered across documents and embedded shortest first: texts of like length share a
# padded embedding batch. The wider the window, the less padding: on CISI's 1599 chunks, windows
# of 256 cost 8.6% more token positions than one sort of everything, 1024 cost 1.5% (and ~15% vs
# ~3% more single-thread embedding time). Each document is stored as soon as its last chunk is
# embedded, so a wide window does not delay storing.
EMBED_BATCH_CHUNKS = 1024
EMBED_SLICE = 64  # at most this many chunks per embedding call (cancel is checked between)
# Files being parsed or waiting for a batch (refilled while a batch fills). At least as many
# files as a window has chunks, or small files never fill a window: at 256, CISI's windows held
# ~300 chunks, and `ragdesk index` ran at 0.83 of the embedder-alone rate instead of 0.89.
MAX_IN_FLIGHT = 2 * EMBED_BATCH_CHUNKS
MAX_IN_FLIGHT_BYTES = 64 << 20  # ... and at most this many bytes of them (one big file always goes);
# also the most bytes of originals one batch holds
MAX_STORING = 64  # groups of embedded documents waiting for the writer thread
MAX_PER_COMMIT = EMBED_SLICE  # documents stored in one transaction (at most a slice's worth)
# Small files in formats read by our own Python code (plain text, Markdown, code, CSV, JSON) are
# parsed on a thread of this process: no native parser to crash, no decompression to explode, a
# bounded read. Everything else (PyMuPDF formats, zip containers, e-mail, bigger files, and a
# file whose content turns out not to be plain text) goes to a parser process.
INLINE_MAX_BYTES = 1 << 20
WORKER_MEMORY_LIMIT = 4 << 30  # a parser process may not take more than this (zip bombs, ...)


@dataclass(frozen=True)
class IndexOptions:
    collection: str = DEFAULT_COLLECTION
    max_tokens: int = 256
    overlap_tokens: int = 32
    limits: extract.Limits = field(default_factory=extract.Limits)
    workers: int | None = None  # parser processes; None = one per core less one (at least 1); 0 = in-process
    keep_originals: bool = True
    parse_timeout: float = 600.0  # seconds one file may take to read (OCR of a long scan is slow)


@dataclass(frozen=True)
class FileOutcome:
    path: str
    status: str  # indexed | unchanged | failed | unsupported | removed
    reason: str | None = None
    pages: int = 0
    chunks: int = 0
    document_id: int | None = None


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


# --- paths ------------------------------------------------------------------------------------


def path_text(path: Path | str) -> str:
    """A path as text the store can hold. Names that are not valid UTF-8 (possible on Linux)
    keep their undecodable bytes as surrogate escapes, which are stored escaped; see
    `path_from_text`."""
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class FoundFile:
    path: Path
    size: int
    mtime: float


def walk(paths: Iterable[Path]) -> Iterator[FoundFile | FileOutcome]:
    """Every regular file under `paths` (recursively), or an outcome for what cannot be walked.

    Hidden files and folders inside folders are skipped (an explicit path is always taken).
    Symbolic links are followed, each real folder once, so a link loop ends.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()

    def one_file(p: Path) -> FoundFile | FileOutcome | None:
        try:
            st = p.stat()
        except OSError as exc:
            return FileOutcome(path_text(p), FAILED, _os_reason(exc))
        if not stat.S_ISREG(st.st_mode):
            return None
        key = (st.st_dev, st.st_ino)
        if key in seen_files:
            return None
        seen_files.add(key)
        return FoundFile(p, st.st_size, st.st_mtime)

    def folder(d: Path) -> Iterator[FoundFile | FileOutcome]:
        try:
            st = d.stat()
        except OSError as exc:
            yield FileOutcome(path_text(d), FAILED, _os_reason(exc))
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return
        seen_dirs.add(key)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            yield FileOutcome(path_text(d), FAILED, _os_reason(exc))
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            p = Path(entry.path)
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError as exc:
                yield FileOutcome(path_text(p), FAILED, _os_reason(exc))
                continue
            if is_dir:
                yield from folder(p)
            else:
                found = one_file(p)
                if found is not None:
                    yield found

    for raw in paths:
        p = Path(os.path.abspath(raw))
        if p.is_dir():
            yield from folder(p)
        else:
            found = one_file(p)
            if found is not None:
                yield found


def _os_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot read the file (permission denied)"
    if exc.errno == errno.ENOENT:
        return "file not found (a broken link, or it was removed)"
    return f"cannot read the file ({exc.strerror or exc})"


# --- parsing (runs in worker processes) -------------------------------------------------------


class TokenCounter:
    """Counts word pieces with the embedder's tokenizer; picklable, loads lazily per process.

    With `input_max_tokens` (the built-in embedder's input limit) it also gives each chunk's
    model input ids (`input_ids`), so the parser tokenizes the chunks beside the embedding
    instead of the embedder doing it between its runs."""

    def __init__(self, tokenizer_file: str, input_max_tokens: int | None = None) -> None:
        self.tokenizer_file = tokenizer_file
        self.input_max_tokens = input_max_tokens
        self._tokenizer: Any = None
        # Texts counted for the document being chunked, with their ids: most chunks are a block
        # the chunker counted as it is (84% of CISI's), and an encoding that fits the model's
        # input is exactly what its truncating tokenizer gives.
        self._counted: dict[str, list[int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"tokenizer_file": self.tokenizer_file, "input_max_tokens": self.input_max_tokens,
                "_tokenizer": None, "_counted": {}}

    def __call__(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = _load_tokenizer(self.tokenizer_file)
        ids = self._tokenizer.encode(text, add_special_tokens=True).ids
        if self.input_max_tokens is not None and len(ids) <= self.input_max_tokens:
            if len(self._counted) >= 4096:  # (a huge document: keep the memory small)
                self._counted.clear()
            self._counted[text] = ids
        return len(ids)

    def input_ids(self, texts: list[str]) -> list[list[int]] | None:
        """Each text's model input ids (None without `input_max_tokens`); forgets the counts."""
        if self.input_max_tokens is None:
            return None
        counted, self._counted = self._counted, {}
        out: list[list[int] | None] = [counted.get(t) for t in texts]
        missing = [i for i, ids in enumerate(out) if ids is None]
        if missing:
            tokenizer = _load_input_tokenizer(self.tokenizer_file, self.input_max_tokens)
            for i, e in zip(missing, tokenizer.encode_batch([texts[i] for i in missing],
                                                             add_special_tokens=True)):
                out[i] = e.ids
        return out  # type: ignore[return-value]


@functools.cache
def _load_input_tokenizer(path: str, max_tokens: int) -> Any:
    from ragdesk.core.embedding import input_tokenizer

    return input_tokenizer(path, max_tokens)


@functools.cache
def _load_tokenizer(path: str) -> Any:
    """Once per process (~40 ms): each parse job carries a fresh TokenCounter."""
    from ragdesk.core.embedding import counting_tokenizer

    return counting_tokenizer(path)


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
    token_ids: list[list[int]] | None = None  # the chunks as the built-in embedder's input


@dataclass(frozen=True)
class ParseJob:
    path: str  # as the OS knows it (may carry surrogate escapes)
    size: int
    mtime: float
    known_hash: str | None
    options: IndexOptions
    count_tokens: Callable[[str], int] | None


def inline_ok(job: ParseJob) -> bool:
    """Whether `job` may be parsed in this process (see INLINE_MAX_BYTES), going by its name
    and listed size; `parse(job, inline=True)` checks the content."""
    return job.size <= INLINE_MAX_BYTES and extract.format_by_name(Path(job.path)) in extract.PLAIN_FORMATS


def parse(job: ParseJob, inline: bool = False) -> Parsed:
    """Read, hash, extract and chunk one file. Never raises for a bad file: the reason is in
    the result. With `inline`, only a small plain-text file is parsed; for anything else the
    result says `needs_worker` (a parser process must read it)."""
    out = Parsed(path_text(job.path), job.size, job.mtime)
    limits = job.options.limits
    try:
        if job.size > limits.max_file_bytes:
            raise extract.ExtractionError(
                f"file is larger than the {limits.max_file_bytes // 2**20} MB limit"
            )
        inline_cap = INLINE_MAX_BYTES if inline and INLINE_MAX_BYTES < limits.max_file_bytes else None
        with open(job.path, "rb") as f:
            data = f.read((inline_cap or limits.max_file_bytes) + 1)
        if inline_cap is not None and len(data) > inline_cap:  # it grew since it was listed
            out.needs_worker = True
            return out
        if len(data) > limits.max_file_bytes:
            raise extract.ExtractionError(
                f"file is larger than the {limits.max_file_bytes // 2**20} MB limit"
            )
        out.size = len(data)
        out.content_hash = hashlib.sha256(data).hexdigest()
        if job.known_hash == out.content_hash:
            out.same_hash = True
            return out
        if inline and extract.detect_format(Path(job.path), data[:4096]) not in extract.PLAIN_FORMATS:
            out.needs_worker = True  # e.g. a PDF named .txt: PyMuPDF reads it, in a worker
            return out
        out.data = data if job.options.keep_originals else None
        doc = extract.extract(Path(job.path), data=data, limits=limits)
        out.title, out.format, out.pages = doc.title, doc.format, len(doc.pages)
        out.warnings = list(doc.warnings)
        out.chunks = chunking.chunk(
            doc,
            max_tokens=job.options.max_tokens,
            overlap_tokens=job.options.overlap_tokens,
            count_tokens=job.count_tokens,
        )
        if not out.chunks:
            raise extract.ExtractionError("no text found in the document")
        if isinstance(job.count_tokens, TokenCounter):
            out.token_ids = job.count_tokens.input_ids([c.text for c in out.chunks])
    except extract.UnsupportedFormat as exc:
        out.status, out.reason, out.chunks = UNSUPPORTED, str(exc), []
    except extract.ExtractionError as exc:
        out.status, out.reason, out.chunks = FAILED, str(exc), []
    except OSError as exc:
        out.status, out.reason, out.chunks = FAILED, _os_reason(exc), []
    except MemoryError:
        out.status, out.reason, out.chunks = FAILED, "the file needs too much memory to read", []
    except Exception as exc:  # a parser bug must not stop the batch; keep it visible
        log.exception("parser failed on %s", out.path)
        out.status, out.reason, out.chunks = FAILED, f"could not be read ({type(exc).__name__}: {exc})", []
    if out.status != INDEXED:
        out.data, out.token_ids = None, None
    return out


_writer_pool: cf.ThreadPoolExecutor | None = None
_writer_guard = threading.Lock()


def _writer() -> cf.ThreadPoolExecutor:
    """The one thread that stores indexed documents, kept for the process: a store opens a
    connection per thread, and writes to one database go one at a time anyway."""
    global _writer_pool
    with _writer_guard:
        if _writer_pool is None:
            _writer_pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragdesk-store")
        return _writer_pool


def parser_pool(workers: int) -> cf.ProcessPoolExecutor:
    """Processes that parse files (see parse_file): fresh interpreters (spawn), memory-bounded,
    ending on their own if this process is killed."""
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_worker_init, initargs=(os.getpid(),))


def _worker_init(parent: int) -> None:
    """Bound each parser process's memory, so a hostile file fails alone, and end it when the
    process that started it is gone (killed outright, it cannot shut its pool down)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    # (The parent's id comes from the parent: by the time this runs it may already be gone.)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="ragdesk-parent-watch").start()


def _exit_with_parent(parent: int, interval: float = 0.5) -> None:
    # Polling the parent id works everywhere; Linux's PR_SET_PDEATHSIG would fire when the
    # *thread* that spawned the worker ends, which in a process pool is not the parent's end.
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


# --- the indexer ------------------------------------------------------------------------------


class Cancelled(RagdeskError):
    pass


class Indexer:
    """Indexes files into a store with an embedder. One instance per store/thread."""

    def __init__(self, store: Store, embedder: Embedder, options: IndexOptions | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options or IndexOptions()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def _token_counter(self) -> Callable[[str], int] | None:
        model_dir = getattr(self.embedder, "model_dir", None)
        if model_dir is not None and (Path(model_dir) / "tokenizer.json").is_file():
            # Input ids only for an embedder that takes them (the built-in one, whose tokenizer
            # this is); any other gets texts.
            takes_ids = callable(getattr(self.embedder, "embed_token_ids", None))
            return TokenCounter(str(Path(model_dir) / "tokenizer.json"),
                                int(self.embedder.max_tokens) if takes_ids else None)
        return None

    def _ensure_vector_space(self) -> None:
        wanted = VectorSpace(self.embedder.name, self.embedder.dimension)
        current = self.store.vector_space()
        if current is None:
            self.store.set_vector_space(wanted)
        elif current != wanted:
            raise RagdeskError(
                f"this vault's vectors were made by {current.embedder} ({current.dimension}"
                f" dimensions), not {wanted.embedder}; re-embed the vault before indexing with it"
            )

    def run(self, paths: Sequence[Path | str]) -> Iterator[Progress]:
        """Index `paths` (files and folders); yields progress after each file. Folders are
        remembered as the collection's source folders, for `sync` and the GUI's watcher."""
        self._cancel.clear()
        self._ensure_vector_space()
        collection = self.store.collection(self.options.collection)
        assert collection is not None
        for p in paths:
            if Path(p).is_dir():
                self.store.add_folder(collection.id, path_text(Path(os.path.abspath(p))))
        progress = Progress()
        yield from self._index_paths(collection.id, paths, progress)
        progress.current, progress.done = None, True
        yield progress.snapshot()

    def sync(self) -> Iterator[Progress]:
        """Rescan every collection's folders: index new and changed files, drop vanished ones."""
        self._cancel.clear()
        self._ensure_vector_space()
        progress = Progress()
        for coll in self.store.collections():
            # Names that are not UTF-8 are stored escaped: recognise them by walking the folders.
            present = {path_text(f.path) for f in walk(Path(d) for d in coll.folders)
                       if isinstance(f, FoundFile)}
            folders = [d.rstrip(os.sep) + os.sep for d in coll.folders]
            for doc in self.store.documents(coll.id):
                # Only what lives in a watched folder is synced: a file added on its own (or
                # uploaded over the LAN) stays until removed by hand.
                if not any(doc.path.startswith(f) for f in folders):
                    continue
                if doc.path not in present and not os.path.exists(doc.path):
                    with self.store.batch():  # the removal and its audit entry together
                        self.store.remove_document(doc.id)
                        self.store.audit("document removed", document_id=doc.id, reason="gone from disk")
                    progress.record(FileOutcome(doc.path, REMOVED, "gone from disk", document_id=doc.id))
                    yield progress.snapshot()
        for coll in self.store.collections():
            if coll.folders and not self._cancel.is_set():
                yield from self._index_paths(coll.id, coll.folders, progress)
        progress.current, progress.done = None, True
        yield progress.snapshot()

    def _index_paths(self, collection_id: int, paths: Iterable[Path | str],
                     progress: Progress) -> Iterator[Progress]:
        known = {d.path: d for d in self.store.documents(collection_id)}
        found: list[FoundFile] = []
        for item in walk(Path(p) for p in paths):
            if isinstance(item, FileOutcome):
                progress.files_total += 1
                progress.record(self._store_failure(collection_id, item, known.get(item.path)))
            else:
                found.append(item)
        progress.files_total += len(found)
        yield progress.snapshot()
        yield from self._index_files(collection_id, found, known, progress)

    # --- the pipeline ---------------------------------------------------------------------

    def _index_files(
        self,
        collection_id: int,
        files: list[FoundFile],
        known: dict[str, Document],
        progress: Progress,
    ) -> Iterator[Progress]:
        todo: deque[ParseJob] = deque()
        counter = self._token_counter()
        for f in files:
            doc = known.get(path_text(f.path))
            if doc is not None and doc.status == INDEXED and doc.size == f.size and doc.mtime == f.mtime:
                progress.record(FileOutcome(doc.path, UNCHANGED, document_id=doc.id,
                                            pages=doc.pages, chunks=doc.chunks))
                continue
            todo.append(ParseJob(os.fsdecode(f.path), f.size, f.mtime,
                                 doc.content_hash if doc is not None and doc.status == INDEXED else None,
                                 self.options, counter))
        if not todo:
            return
        yield progress.snapshot()

        workers = self.options.workers
        if workers is None:
            workers = max(1, (os.cpu_count() or 2) - 1)
        separate = workers > 0 and len(todo) > 1  # parse beside embedding (else: one by one, here)
        pool: cf.ProcessPoolExecutor | None = None
        inline: cf.ThreadPoolExecutor | None = None
        if separate:
            inline = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragdesk-parse")
            if not all(inline_ok(job) for job in todo):
                pool = parser_pool(workers)  # started now: its processes come up while we embed

        def in_worker(job: ParseJob) -> cf.Future[Parsed]:
            nonlocal pool
            if pool is None:
                pool = parser_pool(workers)
            return pool.submit(parse, job)

        pending: deque[tuple[ParseJob, cf.Future[Parsed] | Parsed]] = deque()
        in_flight_bytes = 0

        def top_up() -> None:
            nonlocal in_flight_bytes
            while todo and len(pending) < MAX_IN_FLIGHT and (
                not pending or in_flight_bytes + todo[0].size <= MAX_IN_FLIGHT_BYTES
            ):
                job = todo.popleft()
                if not separate:
                    fut: cf.Future[Parsed] | Parsed = parse(job)
                elif inline is not None and inline_ok(job):
                    fut = inline.submit(parse, job, True)
                else:
                    fut = in_worker(job)
                pending.append((job, fut))
                in_flight_bytes += job.size

        storing: deque[cf.Future[None]] = deque()
        stored: deque[FileOutcome] = deque()  # filled by the writer thread
        try:
            while todo or pending:
                if self._cancel.is_set():
                    break
                # Gather parsed documents until a batch is worth embedding (see EMBED_BATCH_CHUNKS).
                ready: list[Parsed] = []
                ready_chunks = ready_bytes = 0
                enough = min(EMBED_SLICE, EMBED_BATCH_CHUNKS)
                while (todo or pending) and ready_chunks < EMBED_BATCH_CHUNKS and (
                    not ready or ready_bytes < MAX_IN_FLIGHT_BYTES
                ):
                    top_up()
                    job, fut = pending[0]
                    if isinstance(fut, cf.Future) and ready_chunks >= enough and not fut.done():
                        break  # embed what is ready rather than wait
                    pending.popleft()
                    in_flight_bytes -= job.size
                    progress.current = path_text(job.path)
                    parsed, broken = self._result(job, fut)
                    if parsed is None:  # cancelled while waiting
                        break
                    if parsed.needs_worker:  # not plain text after all: a parser process reads it
                        pending.appendleft((job, in_worker(job)))
                        in_flight_bytes += job.size
                        continue
                    ready.append(parsed)
                    if parsed.status == INDEXED and not parsed.same_hash:
                        ready_chunks += len(parsed.chunks)
                    ready_bytes += len(parsed.data or b"")
                    if broken:  # a parser died or hung: requeue what was in flight, start afresh
                        for waiting, _ in reversed(pending):
                            todo.appendleft(waiting)
                        pending.clear()
                        in_flight_bytes = 0
                        if pool is not None:
                            pool = self._restart(pool, workers)
                        if inline is not None:
                            inline.shutdown(wait=False, cancel_futures=True)
                            inline = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragdesk-parse")
                    if self._cancel.is_set():
                        break
                yield from self._embed_and_store(collection_id, ready, known, progress, stored, storing)
            while storing:
                yield from self._stored(progress, stored, storing, wait=True)
            yield from self._stored(progress, stored, storing)
            if self._cancel.is_set():
                progress.cancelled = True
        finally:
            for left in storing:  # an error or a closed generator: let the writer finish
                with contextlib.suppress(Exception):
                    left.result()
            if inline is not None:
                inline.shutdown(wait=False, cancel_futures=True)
            if pool is not None:
                if self._cancel.is_set():  # don't let the exit wait for a long parse
                    for process in list(getattr(pool, "_processes", {}).values()):
                        process.kill()
                pool.shutdown(wait=False, cancel_futures=True)

    def _embed_and_store(self, collection_id: int, batch: list[Parsed], known: dict[str, Document],
                         progress: Progress, stored: deque[FileOutcome],
                         storing: deque[cf.Future[None]]) -> Iterator[Progress]:
        """Embed the batch's new chunks shortest first, in slices (cancel is seen between them),
        and hand each document to the writer thread as soon as its last chunk is embedded: it
        is stored while the next slices are embedded here."""
        new = [p for p in batch if p.status == INDEXED and not p.same_hash]
        # The parser made input ids only for an embedder that takes them (see _token_counter).
        use_ids = bool(new) and all(p.token_ids is not None for p in new)
        embed = self.embedder.embed_token_ids if use_ids else self.embedder.embed  # type: ignore[attr-defined]
        texts: list[Any] = []  # chunk texts, or their token ids when the parser made them
        owner: list[int] = []  # texts[i] is a chunk of batch[owner[i]]
        first_row: list[int] = []
        remaining: list[int] = []
        at_once: list[tuple[Parsed, np.ndarray | None]] = []  # failures, unchanged bytes
        for d, parsed in enumerate(batch):
            first_row.append(len(texts))
            if parsed.status == INDEXED and not parsed.same_hash:
                texts.extend(parsed.token_ids if use_ids else (c.text for c in parsed.chunks))
                owner.extend([d] * len(parsed.chunks))
                remaining.append(len(parsed.chunks))
            else:
                remaining.append(0)
                at_once.append((parsed, None))
        for start in range(0, len(at_once), MAX_PER_COMMIT):
            self._to_writer(storing, stored, collection_id, at_once[start:start + MAX_PER_COMMIT], known)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: np.ndarray | None = None
        for start in range(0, len(order), EMBED_SLICE):
            if self._cancel.is_set():
                return  # what is complete is stored; the rest of the batch is left for next time
            rows = order[start:start + EMBED_SLICE]
            part = embed([texts[i] for i in rows])
            if vectors is None:
                vectors = np.empty((len(texts), part.shape[1]), dtype=part.dtype)
            vectors[rows] = part
            complete = []
            for i in rows:
                d = owner[i]
                remaining[d] -= 1
                if remaining[d] == 0:
                    complete.append(d)
            if complete:
                complete.sort()
                self._to_writer(storing, stored, collection_id,
                                [(batch[d], vectors[first_row[d]:first_row[d] + len(batch[d].chunks)])
                                 for d in complete], known)
            while len(storing) > MAX_STORING:
                yield from self._stored(progress, stored, storing, wait=True)
            yield from self._stored(progress, stored, storing)

    def _to_writer(self, storing: deque[cf.Future[None]], stored: deque[FileOutcome],
                   collection_id: int, items: list[tuple[Parsed, np.ndarray | None]],
                   known: dict[str, Document]) -> None:
        storing.append(_writer().submit(self._store_batch_to, stored, collection_id, items, known))

    def _result(self, job: ParseJob, fut: cf.Future[Parsed] | Parsed) -> tuple[Parsed | None, bool]:
        """The parsed file (None if cancelled meanwhile), and whether the worker pool broke (a
        parser process died or hung)."""
        if isinstance(fut, Parsed):
            return fut, False
        deadline = time.monotonic() + self.options.parse_timeout
        try:
            while True:  # in short slices, so that cancel is seen while a big file is parsed
                try:
                    return fut.result(timeout=0.2), False
                except cf.TimeoutError:
                    if self._cancel.is_set():
                        return None, False
                    if time.monotonic() > deadline:
                        raise
        except cf.TimeoutError:
            return Parsed(path_text(job.path), job.size, job.mtime, status=FAILED,
                          reason=f"reading the file took longer than {self.options.parse_timeout:.0f} s"
                                 " (damaged or hostile content?)"), True
        except cf.process.BrokenProcessPool:
            return Parsed(path_text(job.path), job.size, job.mtime, status=FAILED,
                          reason="the reader crashed on this file (damaged or hostile content)"), True
        except Exception as exc:  # noqa: BLE001 - reported per file
            return Parsed(path_text(job.path), job.size, job.mtime, status=FAILED,
                          reason=f"could not be read ({type(exc).__name__})"), False

    def _restart(self, pool: cf.ProcessPoolExecutor, workers: int) -> cf.ProcessPoolExecutor:
        """A worker died or hung: stop the pool (its jobs are requeued by the caller), start a
        fresh one."""
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()  # a parser stuck in a loop never returns by itself
        pool.shutdown(wait=False, cancel_futures=True)
        return parser_pool(workers)

    def _store_batch_to(self, stored: deque[FileOutcome], collection_id: int,
                        items: list[tuple[Parsed, np.ndarray | None]], known: dict[str, Document]) -> None:
        """On the writer thread: store the documents until cancelled, in one commit (each
        document whole or absent; one commit per document cost a third of the storing time),
        and report them once committed."""
        outcomes = []
        with self.store.batch():
            for outcome in self._store_batch(collection_id, items, known):
                outcomes.append(outcome)
                if self._cancel.is_set():
                    break
        stored.extend(outcomes)

    def _stored(self, progress: Progress, stored: deque[FileOutcome],
                storing: deque[cf.Future[None]], wait: bool = False) -> Iterator[Progress]:
        """Report what the writer has stored; with `wait`, until its oldest batch is done."""
        waited = not wait
        while True:
            while stored:
                progress.record(stored.popleft())
                yield progress.snapshot()
            if storing and storing[0].done():
                storing.popleft().result()  # (its error, if any, is raised here)
                waited = True
                continue
            if waited or not storing:
                return
            with contextlib.suppress(cf.TimeoutError):
                storing[0].result(timeout=0.05)

    def _store_batch(self, collection_id: int, items: list[tuple[Parsed, np.ndarray | None]],
                     known: dict[str, Document]) -> Iterator[FileOutcome]:
        for parsed, vectors in items:
            old = known.get(parsed.path)
            if parsed.same_hash and old is not None:
                self.store.touch_document(old.id, parsed.mtime)
                yield FileOutcome(parsed.path, UNCHANGED, pages=old.pages, chunks=old.chunks,
                                  document_id=old.id)
                continue
            if parsed.status != INDEXED:
                yield self._store_failure(collection_id, FileOutcome(parsed.path, parsed.status, parsed.reason), old)
                continue
            n = len(parsed.chunks)
            assert vectors is not None
            info = DocumentInfo(
                collection_id=collection_id, path=parsed.path, title=parsed.title or Path(parsed.path).stem,
                format=parsed.format, size=parsed.size, mtime=parsed.mtime,
                content_hash=parsed.content_hash, pages=parsed.pages,
            )
            doc = self.store.put_document(info, parsed.chunks, vectors, parsed.data)
            known[doc.path] = doc
            self.store.audit("document added", document_id=doc.id, chunks=n,
                             replaced=old is not None)
            yield FileOutcome(parsed.path, INDEXED, "; ".join(parsed.warnings) or None,
                              pages=parsed.pages, chunks=n, document_id=doc.id)

    def _store_failure(self, collection_id: int, outcome: FileOutcome, old: Document | None) -> FileOutcome:
        """Record a file that could not be indexed, so the user sees it with its reason. A
        document indexed before keeps its content: nothing already stored is lost."""
        if old is not None and old.status == INDEXED:
            return replace(outcome, reason=f"{outcome.reason} (the version indexed before is kept)",
                           document_id=old.id)
        try:
            st = os.stat(outcome.path)
            size, mtime = st.st_size, st.st_mtime
        except OSError:
            size, mtime = 0, 0.0
        info = DocumentInfo(
            collection_id=collection_id, path=outcome.path, title=Path(outcome.path).name,
            format=Path(outcome.path).suffix.lstrip(".").lower(), size=size, mtime=mtime,
            content_hash="", status=outcome.status, error=outcome.reason,
        )
        doc = self.store.put_document(info, [], None, None)
        return replace(outcome, document_id=doc.id)
