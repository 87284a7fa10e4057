"""Background work for the GUI: core calls and generators run off the UI thread.

A `Worker` is a QRunnable that runs one job -- a callable; when it returns a generator, each
item is emitted as it comes -- and reports through a separate QObject of signals
(`started / yielded / result / errored / finished`). It never touches a widget. Cancel asks the
job to stop between items (and calls the job's own cancel hook, e.g. `Indexer.cancel`).

The database connection of each pool thread is its own: the Vault hands every thread a
separate connection (thread-local), and the pool's threads never expire, so the number of
connections stays bounded by the pool size.

The jobs the windows need are here too: indexing, asking, loading the library, probing Ollama.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from ragdesk.core.records import Collection, Conversation, Document
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.gui.workers")

# The built-in embedder is loaded on first use (a second or so); one thread loads it.
_EMBEDDER_LOCK = threading.Lock()


@dataclass(frozen=True)
class WorkerError:
    """What went wrong, for the user. `bug` is True for an unexpected exception (logged)."""

    message: str
    bug: bool = False
    kind: str = ""  # the exception's class name, e.g. "WrongPassphrase"


class WorkerSignals(QObject):
    started = Signal()
    yielded = Signal(object)
    result = Signal(object)
    errored = Signal(object)  # WorkerError
    finished = Signal()


class Worker(QRunnable):
    """Runs `fn` on a pool thread. A generator's items go out one by one through `yielded`;
    a plain return value through `result`."""

    def __init__(self, fn: Callable[[], Any], name: str = "work",
                 cancel: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python keeps it until `finished`
        self.fn = fn
        self.name = name
        self.signals = WorkerSignals()  # created on the UI thread: its signals are queued there
        self._cancel_hook = cancel
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._cancel_hook is not None:
            try:
                self._cancel_hook()
            except Exception:  # cancelling must never raise into the UI
                log.exception("cancelling %s failed", self.name)

    def run(self) -> None:
        signals = self.signals
        try:
            if self.cancelled:
                return
            signals.started.emit()
            value = self.fn()
            if isinstance(value, Iterator):
                for item in value:
                    signals.yielded.emit(item)
                    # With a cancel hook the job ends itself (and reports how it ended).
                    if self.cancelled and self._cancel_hook is None:
                        value.close()
                        break
            else:
                signals.result.emit(value)
        except RagdeskError as exc:
            signals.errored.emit(WorkerError(str(exc), kind=type(exc).__name__))
        except Exception as exc:  # a bug: logged with its traceback, reported briefly
            log.exception("%s failed", self.name)
            signals.errored.emit(WorkerError(
                f"an unexpected error occurred ({type(exc).__name__}); the details are in the log",
                bug=True, kind=type(exc).__name__))
        finally:
            signals.finished.emit()


class WorkerPool(QObject):
    """A thread pool that remembers its workers, so they can be cancelled and awaited
    (locking waits for every worker to leave the database before closing it)."""

    idle = Signal()

    def __init__(self, max_threads: int = 6, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        self._pool.setExpiryTimeout(-1)  # threads (and their DB connections) are reused
        self._active: set[Worker] = set()

    def submit(
        self,
        worker: Worker,
        *,
        on_result: Callable[[Any], None] | None = None,
        on_item: Callable[[Any], None] | None = None,
        on_error: Callable[[WorkerError], None] | None = None,
        on_finished: Callable[[], None] | None = None,
    ) -> Worker:
        if on_result is not None:
            worker.signals.result.connect(on_result)
        if on_item is not None:
            worker.signals.yielded.connect(on_item)
        if on_error is not None:
            worker.signals.errored.connect(on_error)
        if on_finished is not None:
            worker.signals.finished.connect(on_finished)
        worker.signals.finished.connect(lambda w=worker: self._done(w))
        self._active.add(worker)
        self._pool.start(worker)
        return worker

    def run(self, fn: Callable[[], Any], name: str, **callbacks: Any) -> Worker:
        return self.submit(Worker(fn, name), **callbacks)

    def _done(self, worker: Worker) -> None:
        self._active.discard(worker)
        if not self._active:
            self.idle.emit()

    @property
    def busy(self) -> bool:
        return bool(self._active)

    def active(self) -> list[Worker]:
        return list(self._active)

    def cancel_all(self) -> None:
        for worker in list(self._active):
            worker.cancel()

    def when_idle(self, callback: Callable[[], None], timeout_ms: int = 20000) -> None:
        """Call `callback` once no worker runs (at once if none does), or after `timeout_ms`."""
        if not self._active:
            callback()
            return
        fired = False

        def fire() -> None:
            nonlocal fired
            if fired:
                return
            fired = True
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                self.idle.disconnect(fire)
            if self._active:
                log.warning("%d workers still running after %d ms: going on without them",
                            len(self._active), timeout_ms)
            callback()

        self.idle.connect(fire)
        QTimer.singleShot(timeout_ms, fire)

    def wait(self, ms: int) -> bool:
        return self._pool.waitForDone(ms)


def load_embedder(services: Any) -> None:
    """Make sure the vault's embedder is loaded (once, whichever thread asks first)."""
    with _EMBEDDER_LOCK:
        services.embedder  # noqa: B018 - the property loads it


# --- jobs -------------------------------------------------------------------------------------


@dataclass
class IndexUpdate:
    """One step of an indexing run, with the documents it touched, read off the UI thread."""

    progress: Any  # ragdesk.core.indexing.Progress
    documents: list[Document] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)  # FileOutcome of this step


class IndexJob:
    """Index paths (or, with `paths=None`, sync every collection's folders)."""

    def __init__(self, services: Any, paths: Sequence[str] | None, options: dict[str, Any]) -> None:
        self.services = services
        self.paths = list(paths) if paths is not None else None
        self.options = dict(options)
        self.indexer: Any = None
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        if self.indexer is not None:
            self.indexer.cancel()

    def __call__(self) -> Iterator[IndexUpdate]:
        from ragdesk.core.indexing import REMOVED

        load_embedder(self.services)
        self.indexer = self.services.indexer(**self.options)
        if self._cancelled:
            return
        store = self.services.store
        run = self.indexer.sync() if self.paths is None else self.indexer.run(self.paths)
        seen = 0
        for progress in run:
            fresh = progress.outcomes[seen:]
            seen = len(progress.outcomes)
            docs, removed = [], []
            for outcome in fresh:
                if outcome.status == REMOVED:
                    if outcome.document_id is not None:
                        removed.append(outcome.document_id)
                elif outcome.document_id is not None:
                    doc = store.document(outcome.document_id)
                    if doc is not None:
                        docs.append(doc)
            yield IndexUpdate(progress, docs, removed, list(fresh))


class ChatJob:
    """Ask one question; yields the core's ChatEvents."""

    def __init__(self, services: Any, question: str, conversation_id: int | None,
                 collection_ids: list[int] | None) -> None:
        self.services = services
        self.question = question
        self.conversation_id = conversation_id
        self.collection_ids = collection_ids
        self.chat: Any = None
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True
        if self.chat is not None:
            self.chat.cancel()

    def __call__(self) -> Iterator[Any]:
        load_embedder(self.services)
        self.chat = self.services.chat()
        for event in self.chat.ask(self.question, conversation_id=self.conversation_id,
                                   collection_ids=self.collection_ids):
            if self._cancelled:
                self.chat.cancel()  # ask() clears the flag as it starts: say it again
            yield event


@dataclass(frozen=True)
class LibrarySnapshot:
    collections: list[Collection]
    documents: list[Document]
    conversations: list[Conversation]


def load_library(store: Any) -> LibrarySnapshot:
    return LibrarySnapshot(store.collections(), store.documents(), store.conversations())


@dataclass(frozen=True)
class OllamaStatus:
    host: str
    reachable: bool
    version: str | None = None
    models: tuple[str, ...] = ()
    model: str | None = None  # the chat model answers will use
    model_missing: bool = False
    message: str | None = None
    remedy: str | None = None


def is_embedding_model(name: str) -> bool:
    lowered = name.lower()
    return "embed" in lowered or "minilm" in lowered or lowered.startswith("bge")


def probe_ollama(services: Any, host: str | None = None) -> OllamaStatus:
    """Is Ollama reachable, which version, which models; never raises for Ollama's faults."""
    from dataclasses import replace as dc_replace

    from ragdesk.core.chat import OllamaInfo
    from ragdesk.core.ollama import OllamaProblem, missing_model_remedy

    settings = services.chat_settings()
    if host:
        settings = dc_replace(settings, host=host)
    settings = dc_replace(settings, timeout=5.0, connect_timeout=2.0)
    info = OllamaInfo(settings)
    try:
        version = info.version()
        names = tuple(m["name"] for m in info.models())
    except OllamaProblem as problem:
        return OllamaStatus(settings.host, False, message=problem.message, remedy=problem.remedy)
    chat_models = [n for n in names if "embed" not in n]  # as ChatService.choose_model picks
    wanted = settings.model
    if wanted:
        # Ollama resolves a name without a tag to ":latest", and nothing else.
        accepted = {wanted} if ":" in wanted else {wanted, f"{wanted}:latest"}
        missing = not accepted & set(names)
        return OllamaStatus(settings.host, True, version, names, wanted, missing,
                            message=f"the model {wanted} is not installed" if missing else None,
                            remedy=missing_model_remedy(wanted) if missing else None)
    if not chat_models:
        return OllamaStatus(settings.host, True, version, names, None, True,
                            message="Ollama has no chat model installed",
                            remedy=missing_model_remedy("llama3.2"))
    return OllamaStatus(settings.host, True, version, names, chat_models[0])
