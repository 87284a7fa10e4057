"""Getting documents into the vault from the window: the indexing runs (one at a time, the
rest queued), their progress in the status bar, cancel, the files that failed, and the watched
folders that are synced again when something in them changes.

Each run is an `IndexJob` on the worker pool; its updates put the touched documents into the
library pane as they come. Runs cut short by a lock are handed back by `detach()` so that they
resume after the next unlock.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from ragdesk.core.records import FAILED, UNSUPPORTED, Document
from ragdesk.gui.controllers.host import Host
from ragdesk.gui.controllers.library import LibraryController
from ragdesk.gui.pace import Pace
from ragdesk.gui.statusbar import IndexStatus
from ragdesk.gui.workers import IndexJob, IndexUpdate, LibrarySnapshot, Worker, WorkerError, WorkerPool

if TYPE_CHECKING:
    from ragdesk.app import Services
    from ragdesk.core.indexing import Progress

log = logging.getLogger("ragdesk.gui.indexing")

WATCH_DEBOUNCE_MS = 1500
TICK_MS = 1000
MAX_WATCHED = 4000  # directories and files per vault; beyond that, Sync (F5) catches up
PROBLEM_STATUSES = (FAILED, UNSUPPORTED)

# What to index: paths (None: sync the watched folders) and the collection's name.
Request = tuple[list[str] | None, str | None]


class IndexingController(QObject):
    """Runs indexing jobs for the window and shows their progress."""

    finished = Signal(object)  # the last Progress of a run

    def __init__(
        self,
        pool: WorkerPool,
        library: LibraryController,
        status: IndexStatus,
        host: Host,
        *,
        chunk_tokens: Callable[[], int],
        options: dict[str, Any] | None = None,
        watch_folders: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.pool = pool
        self.library = library
        self.status = status
        self.host = host
        self.chunk_tokens = chunk_tokens  # the vault's chunk size setting, read at each run
        self.options = dict(options or {})
        self.watch_enabled = watch_folders
        self.services: Services | None = None
        self._worker: Worker | None = None
        self._job: IndexJob | None = None
        self._queue: list[Request] = []
        self._notes: dict[str, str] = {}  # why a queued run indexes (key: _key(request))
        self._note: str | None = None  # why the current run indexes
        self._pace = Pace()
        self._last_progress: Progress | None = None
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self._folder_changed)
        self.watcher.fileChanged.connect(self._folder_changed)
        # Between the run's reports (a big batch is embedded in one go) the rate and time left
        # are worked out again each second, so they drift the way the run does, not freeze.
        self.tick = QTimer(self)
        self.tick.setInterval(TICK_MS)
        self.tick.timeout.connect(self._tick)
        self.watch_timer = QTimer(self)
        self.watch_timer.setSingleShot(True)
        self.watch_timer.setInterval(WATCH_DEBOUNCE_MS)
        self.watch_timer.timeout.connect(self.sync_folders)

    def attach(self, services: Services, resume: list[Request] | None = None) -> None:
        self.services = services
        for paths, collection in resume or []:
            self.index_paths(paths, collection)

    def detach(self) -> list[Request]:
        """Stop indexing and watching; returns the runs cut short (current and queued)."""
        self.watch_timer.stop()
        self.tick.stop()
        interrupted: list[Request] = []
        if self._job is not None and self._note is None:
            interrupted.append((self._job.paths, self._job.options.get("collection")))
        # Runs with a note (an upgrade's update) are not resumed: the next unlock finds them again.
        interrupted.extend(r for r in self._queue if _key(r) not in self._notes)
        self._queue.clear()
        self._notes.clear()
        self._note = None
        if self._worker is not None:
            self._worker.cancel()
        self._worker = self._job = None
        watched = self.watcher.directories() + self.watcher.files()
        if watched:
            self.watcher.removePaths(watched)
        self.services = None
        return interrupted

    # --- runs ---------------------------------------------------------------------------

    @property
    def indexing(self) -> bool:
        return self._worker is not None

    def index_paths(self, paths: list[str] | None, collection: str | None = None,
                    note: str | None = None) -> None:
        """Index files and folders (None: sync the watched folders) into `collection` (default:
        the one chosen in the library); `note` says why, beside the progress, when the user did
        not ask for it. Runs one job at a time; the rest waits its turn."""
        if self.services is None:
            return
        if collection is None and paths is not None:
            current = self.library.pane.current_collection()
            collection = current.name if current is not None else None
        if self._worker is not None:
            if (paths, collection) not in self._queue:
                self._queue.append((paths, collection))
                if note:
                    self._notes[_key((paths, collection))] = note
            return
        options = dict(self.options)
        options.setdefault("max_tokens", self.chunk_tokens())
        options["overlap_tokens"] = min(options.get("overlap_tokens", 32), options["max_tokens"] // 4)
        if collection:
            options["collection"] = collection
        job = IndexJob(self.services, paths, options)
        worker = Worker(job, "index", cancel=job.cancel)
        self._job, self._worker = job, worker
        self._note = note
        self._pace = Pace()
        self.status.set_note(note)
        self.status.starting()
        self.tick.start()
        self.pool.submit(worker, on_item=self._update, on_error=self._error,
                         on_finished=partial(self._done, worker))

    def _update(self, update: IndexUpdate) -> None:
        if self.services is None:
            return
        if update.documents:
            self.library.pane.upsert(update.documents)
        if update.removed:
            self.library.pane.remove_ids(update.removed)
        p = update.progress
        self._last_progress = p
        estimate = self._pace.update(p, update.outcomes)
        if p.done:
            self.tick.stop()
            self.status.finished(p)
        else:
            self.status.running(p, estimate)
        self.show_problems()

    def _tick(self) -> None:
        p = self._last_progress
        if self.services is None or self._worker is None:
            self.tick.stop()
        elif p is not None and not p.done and p.files_total:
            self.status.running(p, self._pace.update(p, ()))

    def show_problems(self) -> None:
        """The files of the library that could not be indexed, as the library holds them: a run
        cancelled, or one that only skipped them, leaves them there and they are counted."""
        self.status.set_problems(self.library.pane.documents.count_status(PROBLEM_STATUSES))

    def _error(self, error: WorkerError) -> None:
        self.tick.stop()
        self.status.reset()
        self.show_problems()
        self.host.report_error(error, "Indexing stopped")

    def _done(self, worker: Worker) -> None:
        if worker is not self._worker:
            return
        last = self._last_progress
        self.tick.stop()
        self._worker = self._job = None
        self._last_progress = None
        self._note = None
        if self.services is None:
            return
        self.library.reload()
        if last is not None:
            self.finished.emit(last)
        if self._queue:
            paths, collection = self._queue.pop(0)
            self.index_paths(paths, collection, self._notes.pop(_key((paths, collection)), None))
        else:
            self.status.set_note(None)

    def cancel(self) -> None:
        """Stop the current run (what it indexed is kept) and drop the queued ones."""
        if self._worker is not None:
            self._worker.cancel()
        self._queue.clear()
        self._notes.clear()

    def reindex(self, docs: list[Document]) -> None:
        """Index documents again from their files, each into the collection it is in."""
        by_collection: dict[str | None, list[str]] = {}
        for doc in docs:
            by_collection.setdefault(self.library.collection_name(doc.collection_id), []).append(doc.path)
        for collection, paths in by_collection.items():
            self.index_paths(paths, collection)

    # --- watched folders ----------------------------------------------------------------

    def watch(self, snapshot: LibrarySnapshot) -> None:
        """Watch the folders of the library's collections (listed on a worker)."""
        if not self.watch_enabled:
            return
        folders = [f for c in snapshot.collections for f in c.folders]
        if not folders:
            return
        self.pool.run(lambda: _watch_list(folders), "list watched folders",
                      on_result=self._add_watches, on_error=self.host.report_error)

    def _add_watches(self, paths: list[str]) -> None:
        if self.services is None:
            return
        current = set(self.watcher.directories()) | set(self.watcher.files())
        fresh = [p for p in paths if p not in current]
        if fresh:
            self.watcher.addPaths(fresh)

    def _folder_changed(self, _path: str) -> None:
        if self.services is not None:
            self.watch_timer.start()  # debounced: a copy of 100 files is one sync

    def sync_folders(self) -> None:
        """Re-scan the watched folders now (queued behind a running job)."""
        if self.services is None:
            return
        if self._worker is not None:
            if (None, None) not in self._queue:
                self._queue.append((None, None))
            return
        self.index_paths(None)


def _key(request: Request) -> str:
    paths, collection = request
    return repr((paths, collection))


def _watch_list(folders: list[str]) -> list[str]:
    """The folders (recursively) and files to watch, up to MAX_WATCHED (runs on a worker)."""
    out: list[str] = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            out.append(root)
            out.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
            if len(out) >= MAX_WATCHED:
                log.info("watching the first %d paths; Sync catches up with the rest", MAX_WATCHED)
                return out[:MAX_WATCHED]
    return out
