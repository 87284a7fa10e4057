"""The indexing pipeline: files and folders, or uploaded bytes -> documents, chunks, vectors and
keyword entries in the store. `Indexer` is the one path by which a document enters a vault.

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

`Indexer.add_bytes(name, data)` takes one document the same way (parsed in a parser process,
embedded, stored and audited), for the LAN server's uploads.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ragdesk.core import chunking, extract
from ragdesk.core.embedding import Embedder, TokenCounter
from ragdesk.core.indexing.options import IndexOptions
from ragdesk.core.indexing.parse import Parsed, ParseJob, inline_ok, parse
from ragdesk.core.indexing.pool import BudgetWatch, ParserPool
from ragdesk.core.indexing.progress import REMOVED, UNCHANGED, FileOutcome, Progress, Working
from ragdesk.core.indexing.walk import FoundFile, path_text, walk
from ragdesk.core.records import FAILED, INDEXED, UNSUPPORTED, Document, DocumentInfo, VectorSpace
from ragdesk.core.store.base import Store
from ragdesk.errors import RagdeskError

# Chunks gathered across documents and embedded shortest first: texts of like length share a
# padded embedding batch, and the wider the window, the less padding. Each document is stored as
# soon as its last chunk is embedded, so a wide window does not delay storing.
EMBED_BATCH_CHUNKS = 1024
# A batch is gathered for up to this long before what is ready is embedded without the files
# still being read: long enough that fast files make full batches (embedding sorted by length
# wastes less on padding: a batch cut at the first 64 ready chunks took CISI's end-to-end rate
# from 0.91 to 0.785 of the embedder's own), short enough that a slow file holds nobody up.
GATHER_WAIT = 1.0
EMBED_SLICE = 64  # at most this many chunks per embedding call (cancel is checked between)
# Files being parsed or waiting for a batch (refilled while a batch fills): at least as many
# files as a window has chunks, or small files never fill a window.
MAX_IN_FLIGHT = 2 * EMBED_BATCH_CHUNKS
MAX_IN_FLIGHT_BYTES = 64 << 20  # ... and at most this many bytes of them (one big file always goes);
# also the most bytes of originals one batch holds
MAX_STORING = 64  # groups of embedded documents waiting for the writer thread
MAX_PER_COMMIT = EMBED_SLICE  # documents stored in one transaction (at most a slice's worth)
UPLOAD_MARGIN = 30.0  # seconds the parser pool's limit for an upload lies beyond parse_timeout


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


class Cancelled(RagdeskError):
    """`add_bytes` was cancelled while its document was being read."""


def chunks_outdated_before(store: Store) -> float:
    """Documents stored before this time were cut into chunks by an older release (chunks with no
    search context or page breaks, issue 16: set by the migration that added them) and are read
    again even if unchanged; 0 when there are none."""
    return float(store.get_setting("chunks_outdated_before", 0.0) or 0.0)


def outdated_documents(store: Store) -> list[Document]:
    """The indexed documents an older release cut into chunks (`chunks_outdated_before`): what a
    re-index after an upgrade reads again."""
    before = chunks_outdated_before(store)
    if not before:
        return []
    return [d for d in store.documents() if d.status == INDEXED and d.updated_at < before]


class Indexer:
    """Indexes files into a store with an embedder. `run` and `sync`: one at a time per
    instance; `add_bytes` may be called from several threads at once."""

    def __init__(self, store: Store, embedder: Embedder, options: IndexOptions | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options or IndexOptions()
        self._cancel = threading.Event()
        self._parser: ParserPool | None = None  # add_bytes' parser process
        self._store_seconds = 0.0  # time the writer thread spent storing (this run)
        self._parser_guard = threading.Lock()

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        """Stop add_bytes' parser process (a later add_bytes starts another)."""
        with self._parser_guard:
            pool, self._parser = self._parser, None
        if pool is not None:
            pool.shutdown(kill=False)

    def _token_counter(self) -> TokenCounter | None:
        tokenizer = self.embedder.tokenizer
        return TokenCounter(tokenizer) if tokenizer is not None else None

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

    def add_bytes(self, name: str, data: bytes, collection: str | None = None, **details: Any) -> Document:
        """Index one document given as bytes (an upload) under `name` in `collection` (default:
        the options'), replacing what was stored under that name, and audit it with `details`.
        Blocking. Its name's extension tells its format, as for a file.

        Raises extract.ExtractionError (UnsupportedFormat for a kind not read) whose message is
        the reason when it cannot be indexed, RagdeskError when the vault's vectors were made by
        another embedder."""
        self._ensure_vector_space()
        coll = self.store.collection(collection or self.options.collection)
        assert coll is not None
        # An upload has parse_timeout in all (the client is waiting): past it, it is refused and
        # its parser killed, not kept in part (the pool's own limit is set beyond it).
        options = replace(self.options, parse_timeout=self.options.parse_timeout + UPLOAD_MARGIN)
        job = ParseJob(name, len(data), time.time(), None, options, self._token_counter(), data)
        pool = self._upload_parser() if self.options.workers != 0 else None
        parsed, broken = self._result(job, pool.submit(job) if pool is not None else self._parse_here(job))
        if broken and pool is not None:  # its parser hung: the next upload gets a fresh one
            with self._parser_guard:
                if self._parser is pool:
                    self._parser = None
            pool.shutdown(kill=True)
        if parsed is None:
            raise Cancelled("indexing was cancelled")
        if parsed.status == UNSUPPORTED:
            raise extract.UnsupportedFormat(parsed.reason or "unsupported file type")
        if parsed.status != INDEXED:
            raise extract.ExtractionError(parsed.reason or "could not be read")
        embed, (inputs,) = self._embedding([parsed])
        vectors = embed(inputs)
        old = self.store.document_by_path(coll.id, parsed.path)
        known = {old.path: old} if old is not None else {}
        with self.store.batch():  # the document and its audit entry together
            list(self._store_batch(coll.id, [(parsed, vectors)], known, details))
        return known[parsed.path]

    def _upload_parser(self) -> ParserPool:
        """add_bytes' parser process, started on first use and kept for the next uploads."""
        with self._parser_guard:
            if self._parser is None:
                self._parser = ParserPool(1)
            return self._parser

    def _parse_here(self, job: ParseJob) -> Parsed:
        """Parse in this process (no parser processes): page budgets by alarm in the main
        thread, unbounded elsewhere."""
        return parse(job, watch=BudgetWatch(self.options.budget))

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
        outdated = chunks_outdated_before(self.store)
        for f in files:
            doc = known.get(path_text(f.path))
            current = doc is not None and doc.updated_at >= outdated
            if doc is not None and doc.status == INDEXED and doc.size == f.size and doc.mtime == f.mtime \
                    and current:
                progress.record(FileOutcome(doc.path, UNCHANGED, document_id=doc.id,
                                            pages=doc.pages, chunks=doc.chunks))
                continue
            if doc is not None and doc.status in (FAILED, UNSUPPORTED) and doc.size == f.size \
                    and doc.mtime == f.mtime and not self._worth_retrying(doc):
                # Still failed, with its reason: not read again (and not counted as a success).
                progress.record(FileOutcome(doc.path, doc.status, doc.error, document_id=doc.id, read=False))
                continue
            todo.append(ParseJob(os.fsdecode(f.path), f.size, f.mtime,
                                 doc.content_hash if doc is not None and doc.status == INDEXED and current
                                 else None,
                                 self.options, counter))
        if not todo:
            return
        yield progress.snapshot()

        workers = self.options.workers
        if workers is None:
            # At least two, so that one slow file never holds the run up (its page budgets
            # bound it, but a 2,000-page file is slow anyway).
            workers = max(2, (os.cpu_count() or 2) - 1)
        # Parse beside embedding, in parser processes (else: one by one, here). A single small
        # plain-text file is read here at once; anything else only in a parser process, where a
        # hostile file can hang or crash nothing but that process.
        separate = workers > 0 and (len(todo) > 1 or not inline_ok(todo[0]))
        pool: ParserPool | None = None
        inline: cf.ThreadPoolExecutor | None = None
        if separate:
            inline = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragdesk-parse")
            if not all(inline_ok(job) for job in todo):
                pool = ParserPool(workers)  # started now: its processes come up while we embed

        def in_worker(job: ParseJob) -> cf.Future[Parsed]:
            nonlocal pool
            if pool is None:
                pool = ParserPool(workers)
            return pool.submit(job)

        def in_work() -> tuple[Working, ...]:
            return tuple(pool.in_work()) if pool is not None else ()

        pending: deque[tuple[ParseJob, cf.Future[Parsed] | Parsed]] = deque()
        in_flight_bytes = 0

        def top_up() -> None:
            nonlocal in_flight_bytes
            while todo and len(pending) < MAX_IN_FLIGHT and (
                not pending or in_flight_bytes + todo[0].size <= MAX_IN_FLIGHT_BYTES
            ):
                job = todo.popleft()
                if not separate:
                    progress.current = path_text(job.path)
                    fut: cf.Future[Parsed] | Parsed = self._parse_here(job)
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
                gathering = time.monotonic()
                while (todo or pending) and ready_chunks < EMBED_BATCH_CHUNKS and (
                    not ready or ready_bytes < MAX_IN_FLIGHT_BYTES
                ):
                    top_up()
                    # Whichever file is read first is taken first: a slow one waits alone.
                    at = next((i for i, (_, f) in enumerate(pending)
                               if not isinstance(f, cf.Future) or f.done()), None)
                    if at is None:
                        if ready_chunks >= enough and time.monotonic() - gathering > GATHER_WAIT:
                            break  # embed what is ready rather than wait for a slow file
                        yield from self._waiting(pending, progress, in_work)
                        if self._cancel.is_set():
                            break
                        continue
                    job, fut = pending[at]
                    del pending[at]
                    in_flight_bytes -= job.size
                    progress.current = path_text(job.path)
                    parsed, broken = self._result(job, fut)
                    if parsed is None:  # cancelled while waiting
                        break
                    progress.seconds_parsing += parsed.seconds
                    progress.seconds_ocr += parsed.ocr_seconds
                    progress.in_work = in_work()
                    if parsed.needs_worker:  # not plain text after all: a parser process reads it
                        pending.appendleft((job, in_worker(job)))
                        in_flight_bytes += job.size
                        continue
                    ready.append(parsed)
                    if parsed.new:
                        ready_chunks += len(parsed.chunks)
                    ready_bytes += len(parsed.data or b"")
                    if broken and inline is not None:  # the parsing thread hung: a fresh one
                        inline.shutdown(wait=False, cancel_futures=True)
                        inline = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ragdesk-parse")
                        for i, (waiting, queued) in enumerate(pending):  # what it had queued goes again
                            if isinstance(queued, cf.Future) and queued.cancelled():
                                pending[i] = (waiting, inline.submit(parse, waiting, True))
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
                pool.shutdown(kill=True)  # (nothing is waiting for it any more)

    def _embed_and_store(self, collection_id: int, batch: list[Parsed], known: dict[str, Document],
                         progress: Progress, stored: deque[FileOutcome],
                         storing: deque[cf.Future[None]]) -> Iterator[Progress]:
        """Embed the batch's new chunks shortest first, in slices (cancel is seen between them),
        and hand each document to the writer thread as soon as its last chunk is embedded: it
        is stored while the next slices are embedded here."""
        embed, inputs = self._embedding([p for p in batch if p.new])
        next_inputs = iter(inputs)
        texts: list[Any] = []  # chunk texts, or their token ids when the parser made them
        owner: list[int] = []  # texts[i] is a chunk of batch[owner[i]]
        first_row: list[int] = []
        remaining: list[int] = []
        at_once: list[tuple[Parsed, np.ndarray | None]] = []  # failures, unchanged bytes
        for d, parsed in enumerate(batch):
            first_row.append(len(texts))
            if parsed.new:
                texts.extend(next(next_inputs))
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
            began = time.monotonic()
            part = embed([texts[i] for i in rows])
            progress.seconds_embedding += time.monotonic() - began
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

    def _embedding(self, new: list[Parsed]) -> tuple[Callable[[list[Any]], np.ndarray], list[list[Any]]]:
        """How to embed these documents' chunks, and each one's input: the token ids their
        parser made (it makes them for an embedder that takes them), else the texts."""
        token_ids = [p.token_ids for p in new if p.token_ids is not None]
        if new and len(token_ids) == len(new):
            return self.embedder.embed_token_ids, token_ids
        return self.embedder.embed, [[chunking.embedding_text(c) for c in p.chunks] for p in new]

    def _to_writer(self, storing: deque[cf.Future[None]], stored: deque[FileOutcome],
                   collection_id: int, items: list[tuple[Parsed, np.ndarray | None]],
                   known: dict[str, Document]) -> None:
        storing.append(_writer().submit(self._store_batch_to, stored, collection_id, items, known))

    def _result(self, job: ParseJob, fut: cf.Future[Parsed] | Parsed) -> tuple[Parsed | None, bool]:
        """The parsed file (None if cancelled meanwhile), and whether it took longer than
        parse_timeout (its thread or parser process hung; a parser pool answers for its files
        before that, except an upload's: see add_bytes)."""
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
        except Exception as exc:  # whatever the parser raised is reported for this file alone
            return Parsed(path_text(job.path), job.size, job.mtime, status=FAILED,
                          reason=f"could not be read ({type(exc).__name__})"), False

    def _waiting(self, pending: deque[tuple[ParseJob, cf.Future[Parsed] | Parsed]],
                 progress: Progress, in_work: Callable[[], tuple[Working, ...]]) -> Iterator[Progress]:
        """Wait a moment for any file being read; meanwhile report which files and pages are
        in work (the caller shows it: a file may take a while)."""
        futures = [f for _, f in pending if isinstance(f, cf.Future)]
        cf.wait(futures, timeout=0.5, return_when=cf.FIRST_COMPLETED)
        working = in_work()
        if working != progress.in_work or any(not f.done() for f in futures):
            progress.in_work = working
            progress.seconds_storing = self._store_seconds
            yield progress.snapshot()

    def _store_batch_to(self, stored: deque[FileOutcome], collection_id: int,
                        items: list[tuple[Parsed, np.ndarray | None]], known: dict[str, Document]) -> None:
        """On the writer thread: store the documents until cancelled, in one commit (each
        document whole or absent; a commit costs more than storing a small document), and report
        them once committed."""
        outcomes = []
        started = time.monotonic()
        with self.store.batch():
            for outcome in self._store_batch(collection_id, items, known):
                outcomes.append(outcome)
                if self._cancel.is_set():
                    break
        self._store_seconds += time.monotonic() - started  # (only this thread adds to it)
        stored.extend(outcomes)

    def _stored(self, progress: Progress, stored: deque[FileOutcome],
                storing: deque[cf.Future[None]], wait: bool = False) -> Iterator[Progress]:
        """Report what the writer has stored; with `wait`, until its oldest batch is done."""
        waited = not wait
        while True:
            while stored:
                progress.record(stored.popleft())
                progress.seconds_storing = self._store_seconds
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
                     known: dict[str, Document],
                     details: dict[str, Any] | None = None) -> Iterator[FileOutcome]:
        """Store each parsed document (or its failure) and audit it; `known` (by path) is kept
        up to date. Call inside `store.batch()`."""
        for parsed, vectors in items:
            old = known.get(parsed.path)
            if parsed.same_hash and old is not None:
                self.store.touch_document(old.id, parsed.mtime)
                yield FileOutcome(parsed.path, UNCHANGED, pages=old.pages, chunks=old.chunks,
                                  document_id=old.id)
                continue
            if parsed.status != INDEXED:
                outcome = FileOutcome(parsed.path, parsed.status, parsed.reason, seconds=parsed.seconds)
                yield self._store_failure(collection_id, outcome, old)
                continue
            n = len(parsed.chunks)
            assert vectors is not None
            info = DocumentInfo(
                collection_id=collection_id, path=parsed.path, title=parsed.title or Path(parsed.path).stem,
                format=parsed.format, size=parsed.size, mtime=parsed.mtime,
                content_hash=parsed.content_hash, pages=parsed.pages, error=degraded_note(parsed.degraded),
            )
            doc = self.store.put_document(info, parsed.chunks, vectors, parsed.data)
            known[doc.path] = doc
            self.store.audit("document added", document_id=doc.id, chunks=n,
                             replaced=old is not None, **(details or {}))
            yield FileOutcome(parsed.path, INDEXED, "; ".join(parsed.warnings) or None,
                              pages=parsed.pages, chunks=n, document_id=doc.id, seconds=parsed.seconds,
                              degraded=tuple(parsed.degraded))

    def _worth_retrying(self, doc: Document) -> bool:
        """A file that failed and has not changed since is read again only when asked to, or
        when the cause may have gone: it needed OCR that was missing or switched off, and OCR is
        available now. (A scan OCR could not read stays skipped: reading it again changes nothing.)"""
        if self.options.retry_failed:
            return True
        reason = (doc.error or "").lower()
        lacked_ocr = "install tesseract" in reason or "switched off" in reason
        limits = self.options.limits
        return lacked_ocr and limits.ocr and extract.ocr_available(limits.ocr_language)

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


DEGRADED_PREFIX = "read in part: "


def degraded_note(degraded: Sequence[extract.DegradedPage]) -> str | None:
    """What an indexed document lost, kept in its `error` (the reason column, unused for an
    indexed document), for the library's detail pane: None when nothing was lost."""
    if not degraded:
        return None
    return DEGRADED_PREFIX + "; ".join(d.describe() for d in degraded)
