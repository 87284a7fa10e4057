"""How many questions the LAN server answers in time: questions embedded together, searches
admitted only while they can start within the latency budget.

Measured with benchmarks/bench_capacity.py (built-in embedder, CACM and 100k-chunk vaults, open-loop
arrivals; RESULTS.md, issue 21). An answer's server part is mostly its search: embedding the
question, the keyword list (SQLite), the vector list, the passages. Two levers live here:

* `QuestionEmbedder`: the server's searches embed their questions through one thread that takes
  every question waiting at once and embeds them in one batch (those that queued while the last
  batch ran: no gathering window by default). A question is handed to it as soon as its answer
  is admitted (`prepare`), so it is embedded while the answer still waits for a search thread;
  the search then finds its vector ready. One call for many questions also
  costs less per question than one call each (onnxruntime uses the cores better on a batch), and
  onnxruntime runs without the interpreter lock, beside the searches.
* `SearchQueue`: counts the answers that wait for or hold a search thread and keeps a moving
  average of how long a search takes. When a new answer would wait longer than the budget for
  its sources, `check` says so and the server answers 503 with a Retry-After at once, instead of
  admitting it and letting every answer in the queue slow down. `EarlyRefusal` asks it before a
  question's body is even read, so that refusing costs the event loop as little as possible (at
  80 questions a second, reading and validating every refused request kept the loop so busy
  that the refusals themselves took seconds).

The desktop app's own questions take neither path: they embed with the services' embedder on
their own thread and never wait in this queue (tests/integration/test_server_capacity.py).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from starlette.types import ASGIApp, Receive, Scope, Send

from ragdesk.core.embedding import Embedder, Tokenizer

log = logging.getLogger("ragdesk.server.capacity")

ANSWER_BUDGET = 0.5  # seconds an admitted answer may wait for its search to start, predicted
FIRST_GUESS = 0.05  # seconds a search takes, until one has finished (a burst at a cold server)
# Seconds the embedding thread waits for more questions after the first. 0: it takes what
# queued while the last batch ran (batches averaged 1.1-1.5 questions up to 80 q/s, and a wait
# only added to every question's time; RESULTS.md, issue 21).
GATHER_WINDOW = 0.0
MAX_BATCH = 32  # questions embedded in one call


@dataclass
class _Job:
    text: str
    done: threading.Event = field(default_factory=threading.Event)
    vector: np.ndarray | None = None
    error: BaseException | None = None
    refs: int = 0  # answers that prepared this text and have not released it


class QuestionEmbedder:
    """An Embedder for the server's searches: `embed_query` is answered by a single thread that
    embeds the questions waiting together (`source()` gives the vault's current embedder, so a
    change of embedder takes effect on the next batch). Everything else is delegated."""

    def __init__(self, source: Callable[[], Embedder], window: float = GATHER_WINDOW,
                 max_batch: int = MAX_BATCH) -> None:
        self._source = source
        self.window = window
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._prepared: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # embedding calls made
        self.embedded = 0  # questions embedded by them
        self.on_batch: Callable[[int, float], None] | None = None  # (size, seconds), for metrics

    # --- the Embedder protocol, delegated ---------------------------------------------------------

    @property
    def inner(self) -> Embedder:
        return self._source()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    @property
    def tokenizer(self) -> Tokenizer | None:
        return self.inner.tokenizer

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.inner.embed(texts)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        return self.inner.embed_token_ids(token_ids)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    # --- questions, in batches --------------------------------------------------------------------

    def prepare(self, text: str) -> str:
        """Start embedding `text` now (does not block); `embed_query(text)` then waits for that
        result. Returns the key to `release` once the answer's search is over."""
        with self._lock:
            job = self._prepared.get(text)
            if job is None:
                job = self._prepared[text] = _Job(text)
                self._submit(job)
            job.refs += 1
        return text

    def release(self, key: str) -> None:
        with self._lock:
            job = self._prepared.get(key)
            if job is not None:
                job.refs -= 1
                if job.refs <= 0:
                    del self._prepared[key]

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            job = self._prepared.get(text)
            if job is None:  # not prepared (a follow-up's widened query): joins the next batch
                job = _Job(text)
                self._submit(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.vector is not None
        return job.vector

    def close(self) -> None:
        """Stop the embedding thread (questions still queued are embedded first)."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(None)
            thread.join(10)

    def _submit(self, job: _Job) -> None:  # under self._lock
        if self._closed:
            job.error = RuntimeError("the server is stopping")
            job.done.set()
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ragdesk-embed-questions", daemon=True)
            self._thread.start()
        self._queue.put(job)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self.window
            while len(batch) < self.max_batch:
                try:  # what is already waiting, then what arrives within the window
                    left = deadline - time.monotonic()
                    job = self._queue.get_nowait() if left <= 0 else self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            self._embed(batch)
            if stop:
                return

    def _embed(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            vectors = self.inner.embed([j.text for j in batch])
        except BaseException as exc:  # every waiting search gets the error
            for j in batch:
                j.error = exc
        else:
            for j, v in zip(batch, vectors, strict=True):
                j.vector = v
        for j in batch:
            j.done.set()
        self.batches += 1
        self.embedded += len(batch)
        if self.on_batch is not None:
            self.on_batch(len(batch), time.perf_counter() - started)


class QueueFull(Exception):
    """An answer would wait longer than the budget for its search: refuse it now."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"predicted wait {wait:.2f} s")
        self.wait = wait

    @property
    def retry_after(self) -> int:
        """Whole seconds after which the queue has likely drained (1 to 30)."""
        return max(1, min(30, math.ceil(self.wait)))


class SearchQueue:
    """The answers waiting for or holding one of `workers` search threads, and how long a search
    takes (the mean of the last `window` searches, each counted at most `budget`). `check`
    predicts a new answer's wait for a thread: searches ahead of it divided among the threads,
    each taking that mean.

    Why a window's mean: the wait is the sum of the searches ahead, which the mean predicts;
    an exponential average of the last few (weight 0.2) jumped from 15 to 35-60 ms after one
    slow search (a garbage collection, a question with new words) and refused answers that
    would have had their sources in 0.3 s (CACM at 40 q/s: 19-27 of 1,178 refused, each time
    right after such a search; RESULTS.md, issue 21)."""

    def __init__(self, workers: int, budget: float = ANSWER_BUDGET, window: int = 32,
                 first_guess: float = FIRST_GUESS) -> None:
        self.workers = max(1, workers)
        self.budget = budget
        self.pending = 0  # admitted answers whose search has not finished
        self.search_seconds = first_guess  # mean of the last searches (first_guess before any)
        self.lag = 0.0  # the event loop's recent lag (moving average of `loop_lag`)
        self._recent: deque[float] = deque(maxlen=max(1, window))
        self._lock = threading.Lock()

    def predicted_wait(self) -> float:
        """Seconds a search admitted now would wait for a thread, plus the event loop's lag (the
        loop reads the request and sends the sources: when it lags, every answer waits)."""
        ahead = self.pending - self.workers + 1
        return max(0, ahead) * self.search_seconds / self.workers + self.lag

    def check(self) -> None:
        """Raise QueueFull when a new answer's sources would come later than the budget: its
        wait for a thread, its own search, the loop's lag. A free search thread admits unless
        the loop lags past the budget, so a slow search (the first, which loads the vectors)
        cannot shut the door until searches finish again."""
        with self._lock:
            wait = self.predicted_wait() + self.search_seconds if self.pending >= self.workers \
                else self.lag
        if wait > self.budget:
            raise QueueFull(wait)

    def loop_lag(self, seconds: float) -> None:
        """One measure of the event loop's lag (server.answers samples it every 50 ms)."""
        self.lag = 0.7 * self.lag + 0.3 * seconds

    def enter(self) -> None:
        with self._lock:
            self.pending += 1

    def leave(self, seconds: float | None) -> None:
        """One admitted answer's search is over (`seconds` it took; None if it never ran)."""
        with self._lock:
            self.pending -= 1
            if seconds is not None:
                self._recent.append(min(seconds, self.budget))
                self.search_seconds = math.fsum(self._recent) / len(self._recent)


QUESTION_ROUTES = frozenset({"/api/v1/ask", "/v1/chat/completions", "/api/chat"})


class EarlyRefusal:
    """ASGI middleware (inside the token guard): a question while the search queue is past the
    budget is answered 503 + Retry-After before its body is read. The route's own admission
    (ServerContext.admit) decides again for what passes: this is only the cheap first look."""

    def __init__(self, app: ASGIApp, queue: Callable[[], SearchQueue],
                 refused: Callable[[], None] | None = None) -> None:
        self.app = app
        self.queue = queue
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in QUESTION_ROUTES:
            try:
                self.queue().check()
            except QueueFull as full:
                if self.refused is not None:
                    self.refused()
                await _busy(send, full.retry_after)
                return
        await self.app(scope, receive, send)


async def _busy(send: Send, retry_after: int) -> None:
    message = "the server is busy; try again in a moment"
    body = json.dumps({"detail": message, "error": {"message": message, "code": 503}}).encode()
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode())]})
    await send({"type": "http.response.body", "body": body})
