"""Parser processes that say where they are, so that one bad page costs that page, not the file.

Each parser process reads one file at a time (`parse.parse` with a `ReportingWatch`) and tells
this side, over its pipe, which page and step it is in and each page it finished. A manager
thread here hands out files, and watches the clock:

* an optional step (layout analysis, table detection, OCR) past its budget is first stopped in
  the process itself by an alarm (enough for Python code, e.g. PyMuPDF's `find_tables`); if the
  process does not come back (native code that never returns), it is killed and the file is
  resumed in a fresh process from the page it was on, with that step switched off there and the
  pages read before handed back -- nothing is read twice;
* a file past its own limit (scaled by its size and pages, `FileLimit`) is stopped; the pages it
  finished are kept and the document is finished without the rest (marked as such);
* a process that dies is replaced the same way (the step it died in is skipped on that page).

Files are handed out as processes come free, so a slow file holds one process, never the run.
What each process writes to its stderr (Tesseract's and MuPDF's chatter) goes to the log.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import itertools
import logging
import multiprocessing
import multiprocessing.connection as mpc
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ragdesk.core.extract import PageWatch, StepBudget, StepTimeout
from ragdesk.core.extract.budget import STEP_TEXT, overran
from ragdesk.core.indexing.parse import Parsed, ParseJob, parse, worker_init
from ragdesk.core.indexing.progress import Working
from ragdesk.core.indexing.walk import path_text
from ragdesk.core.records import FAILED

log = logging.getLogger("ragdesk.index")
stderr_log = logging.getLogger("ragdesk.parser.stderr")

GRACE = 2.0  # seconds past a step's budget before its process is killed (the alarm had its go)
PAGE_READ_SECONDS = 20.0  # reading one page's text (no alarm: it is not optional) before a kill
MAX_RESTARTS = 8  # processes one file may cost before it is given up
FINISH_SECONDS = 30.0  # finishing a file whose time ran out, from the pages it read
BETWEEN = "between pages"  # a page is done and the next not begun (or all are: chunking)


@dataclass
class Resume:
    """What a fresh process picks a file up from."""

    pages: dict[int, Any] = field(default_factory=dict)  # 0-based page -> PageLines
    skip: dict[tuple[int, str], str] = field(default_factory=dict)
    stop_at: int | None = None
    stop_reason: str = ""


# --- the parser process's side --------------------------------------------------------------


class BudgetWatch(PageWatch):
    """Stops an optional step past its budget with an alarm (SIGALRM; in the main thread of
    a process only: elsewhere the steps run unbounded here and the caller's clock decides)."""

    def __init__(self, budget: StepBudget, resume: Resume | None = None) -> None:
        resume = resume or Resume()
        super().__init__(resume=resume.pages, skip=resume.skip, stop_at=resume.stop_at,
                         stop_reason=resume.stop_reason)
        self.budget = budget
        self._armed: str | None = None

    @contextlib.contextmanager
    def step(self, page: int, step: str) -> Iterator[None]:
        self.starting(page, step)
        reason = self.skip.get((page, step))
        if reason is not None:
            raise StepTimeout(reason)
        seconds = self.budget.of(step)
        if seconds <= 0 or threading.current_thread() is not threading.main_thread():
            yield
            return

        def alarm(signum: int, frame: Any) -> None:
            if self._armed is not None:
                self._armed = None
                raise StepTimeout(overran(step, seconds))

        previous = signal.signal(signal.SIGALRM, alarm)
        self._armed = step
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            self._armed = None
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def begin_page(self, page: int) -> str | None:
        self.starting(page, "reading")
        return super().begin_page(page)

    def starting(self, page: int, step: str) -> None:
        """A step of 0-based `page` begins (reported by the reporting watch)."""


class ReportingWatch(BudgetWatch):
    """A BudgetWatch that tells the pool where the reader is, and hands it each page read."""

    def __init__(self, send: Any, task: int, budget: StepBudget, resume: Resume) -> None:
        super().__init__(budget, resume)
        self._send = send
        self._task = task

    def opened(self, pages: int) -> None:
        self._send(("open", self._task, pages))

    def starting(self, page: int, step: str) -> None:
        self._send(("step", self._task, page, step))

    def page_done(self, page: int, lines: Any) -> None:
        self._send(("page", self._task, page, lines))


def _serve(conn: mpc.Connection, parent: int, setup: Callable[[], None] | None) -> None:
    """A parser process: read files until told to stop (None) or the parent is gone."""
    worker_init(parent)
    lock = threading.Lock()

    def send(message: Any) -> None:
        with lock:
            conn.send(message)

    _stderr_to_parent(send)
    if setup is not None:
        setup()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        _, task, job, resume = message
        watch = ReportingWatch(send, task, job.options.budget, resume)
        send(("done", task, parse(job, watch=watch)))


def _stderr_to_parent(send: Any) -> None:
    """Point this process's fd 2 (and 1) at a pipe whose lines go to the parent's log: native
    libraries (Tesseract, MuPDF) write there directly, past any Python setting, and PyMuPDF
    prints some messages."""
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.dup2(write_end, 1)
    os.close(write_end)

    def pump() -> None:
        with open(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        with contextlib.suppress(Exception):
                            send(("stderr", line.decode("utf-8", errors="replace")[:2000]))

    threading.Thread(target=pump, daemon=True, name="ragdesk-parser-stderr").start()


# --- this side ------------------------------------------------------------------------------


@dataclass
class _Task:
    id: int
    job: ParseJob
    future: cf.Future[Parsed]
    resume: Resume = field(default_factory=Resume)
    started: float = 0.0  # first handed out (monotonic)
    pages: int = 0
    page: int = -1  # 0-based page in work
    step: str = "reading"
    step_started: float = 0.0
    ocr_pages: int = 0
    restarts: int = 0
    finishing: bool = False
    deadline: float = 0.0  # for a finishing task


@dataclass
class _Process:
    process: Any
    conn: mpc.Connection
    task: _Task | None = None


def _step_shown(task: _Task) -> str:
    """The task's step as Working.step says it: after its last page, it is being chunked."""
    if task.finishing:
        return "finishing"
    if task.step == BETWEEN and task.pages and task.page + 1 >= task.pages:
        return "chunking"
    return task.step


def _limit(task: _Task) -> float:
    """The task's file limit now (it grows as its pages and OCR become known)."""
    options = task.job.options
    return options.file_limit.seconds(task.job.size, task.pages, task.ocr_pages, options.parse_timeout)


class ParserPool:
    """`workers` parser processes fed from a queue; `submit` gives a future of the Parsed."""

    def __init__(self, workers: int, setup: Callable[[], None] | None = None) -> None:
        """`setup`, a module-level function, runs in each process before its first file (tests
        use it to make a step hang or crash there)."""
        self.workers = max(1, workers)
        self._setup = setup
        self._context = multiprocessing.get_context("spawn")
        self._queue: deque[_Task] = deque()
        self._processes: list[_Process] = []
        self._guard = threading.Lock()
        self._wake_r, self._wake_w = self._context.Pipe(duplex=False)
        self._stopping = False
        self._kill = False
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._manage, daemon=True, name="ragdesk-parsers")
        self._thread.start()

    # -- the caller's side

    def submit(self, job: ParseJob) -> cf.Future[Parsed]:
        future: cf.Future[Parsed] = cf.Future()
        with self._guard:
            if self._stopping:
                raise RuntimeError("the parser pool is shut down")
            self._queue.append(_Task(next(self._ids), job, future))
        self._wake()
        return future

    def in_work(self) -> list[Working]:
        """The files being read now: which page and step each is on."""
        now = time.monotonic()
        with self._guard:
            tasks = [p.task for p in self._processes if p.task is not None]
        return [Working(path_text(t.job.path), t.page + 1 if t.page >= 0 else 0, t.pages,
                        _step_shown(t), round(now - t.started, 1))
                for t in tasks]

    def shutdown(self, kill: bool = False) -> None:
        """Stop taking files; with `kill`, end the processes at once (else they finish their
        file). Queued files are cancelled."""
        with self._guard:
            self._stopping, self._kill = True, kill
            queued, self._queue = list(self._queue), deque()
        for task in queued:
            task.future.cancel()
        self._wake()
        if kill:
            self._thread.join(timeout=5)

    # -- the manager thread

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send_bytes(b"!")

    def _manage(self) -> None:
        try:
            while True:
                with self._guard:
                    stopping, kill = self._stopping, self._kill
                if stopping and (kill or not any(p.task for p in self._processes)):
                    break
                self._hand_out()
                waitables: list[Any] = [self._wake_r]
                for p in self._processes:
                    waitables += [p.conn, p.process.sentinel]
                for ready in mpc.wait(waitables, timeout=0.1):
                    if ready is self._wake_r:
                        with contextlib.suppress(EOFError, OSError):
                            while self._wake_r.poll():
                                self._wake_r.recv_bytes()
                for p in list(self._processes):
                    self._drain(p)
                self._check_clocks()
        except Exception:  # a bug here must not leave callers waiting forever
            log.exception("the parser pool stopped")
        finally:
            self._stop_all()

    def _hand_out(self) -> None:
        with self._guard:
            if self._stopping:
                return
            while self._queue:
                idle = next((p for p in self._processes if p.task is None), None)
                if idle is None and len(self._processes) < self.workers:
                    idle = self._start()
                if idle is None:
                    return
                task = self._queue.popleft()
                if task.future.cancelled():
                    continue
                if not task.started:
                    if not task.future.set_running_or_notify_cancel():
                        continue
                    task.started = time.monotonic()
                task.page, task.step, task.step_started = -1, "reading", time.monotonic()
                try:
                    idle.conn.send(("job", task.id, task.job, task.resume))
                except (OSError, ValueError) as exc:  # it died meanwhile (or the job won't pickle)
                    self._retire(idle)
                    if isinstance(exc, ValueError):
                        self._fail(task, f"could not be handed to a reader ({exc})")
                    else:
                        self._queue.appendleft(task)
                    continue
                idle.task = task

    def _start(self) -> _Process:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(target=_serve, args=(theirs, os.getpid(), self._setup), daemon=True,
                                        name="ragdesk-parser")
        process.start()
        theirs.close()
        p = _Process(process, ours)
        self._processes.append(p)
        return p

    def _drain(self, p: _Process) -> None:
        """Take in everything a process said; notice when it died."""
        try:
            while p.conn.poll():
                self._message(p, p.conn.recv())
        except (EOFError, OSError):
            self._died(p)
            return
        except Exception:  # e.g. a result that does not unpickle: that file fails alone
            log.exception("a parser process sent something unreadable")
            self._died(p)
            return
        if not p.process.is_alive():
            with contextlib.suppress(EOFError, OSError):
                while p.conn.poll():
                    self._message(p, p.conn.recv())
            self._died(p)

    def _message(self, p: _Process, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "stderr":
            stderr_log.debug("%s", message[1])
            return
        task = p.task
        if task is None or message[1] != task.id:
            return  # from a file given up on
        if kind == "open":
            task.pages = message[2]
        elif kind == "step":
            task.page, task.step, task.step_started = message[2], message[3], time.monotonic()
            if task.step == "ocr":
                task.ocr_pages += 1
        elif kind == "page":
            task.resume.pages[message[2]] = message[3]
            task.step, task.step_started = BETWEEN, time.monotonic()
        elif kind == "done":
            parsed: Parsed = message[2]
            parsed.seconds = time.monotonic() - task.started
            p.task = None
            if not task.future.cancelled():
                task.future.set_result(parsed)

    def _check_clocks(self) -> None:
        now = time.monotonic()
        for p in list(self._processes):
            task = p.task
            if task is None:
                continue
            if task.finishing:
                if now > task.deadline:
                    self._kill_process(p)
                    self._fail(task, self._too_long(task))
                continue
            limit = _limit(task)
            if now - task.started > limit:
                log.info("%s: the file's time limit (%.0f s) ran out on page %d",
                            path_text(task.job.path), limit, task.page + 1)
                self._kill_process(p)
                self._finish_early(task, limit)
                continue
            if task.page < 0 or task.step == BETWEEN:
                continue
            budget = task.job.options.budget.of(task.step)
            allowed = budget + GRACE if task.step != "reading" else PAGE_READ_SECONDS
            if now - task.step_started > allowed:
                log.info("%s: %s of page %d did not stop within %.0f s: its reader is replaced",
                            path_text(task.job.path), task.step, task.page + 1, allowed)
                self._kill_process(p)
                self._skip_and_resume(task, overran(task.step, budget) if task.step != "reading"
                                      else f"reading the page took longer than {PAGE_READ_SECONDS:g} s")

    def _died(self, p: _Process) -> None:
        task = p.task
        self._retire(p)
        if task is None or task.future.done():
            return
        if task.finishing or task.page < 0:
            self._fail(task, "the reader crashed on this file (damaged or hostile content)")
            return
        what = STEP_TEXT.get(task.step, task.step)
        self._skip_and_resume(task, f"{what} crashed the reader and was skipped"
                              if task.step != "reading" else "the reader crashed on this page")

    def _skip_and_resume(self, task: _Task, reason: str) -> None:
        """Start the file again in a fresh process, after the pages read, without the step
        that overran (or the page that crashed)."""
        task.restarts += 1
        if task.restarts > MAX_RESTARTS:
            self._fail(task, "the reader crashed or hung on this file again and again")
            return
        step = task.step if task.step != "reading" else "page"
        task.resume.skip[(task.page, step)] = reason
        with self._guard:
            self._queue.appendleft(task)

    def _finish_early(self, task: _Task, limit: float) -> None:
        """The file's time ran out: finish it from the pages read so far (if any)."""
        if not task.resume.pages:
            self._fail(task, self._too_long(task, limit))
            return
        task.resume.stop_at = max(task.resume.pages) + 1
        task.resume.stop_reason = f"not read: the file's time limit ({limit:.0f} s) ran out"
        task.finishing = True
        task.deadline = time.monotonic() + FINISH_SECONDS + 0.05 * task.pages
        with self._guard:
            self._queue.appendleft(task)

    def _too_long(self, task: _Task, limit: float | None = None) -> str:
        if limit is None:
            limit = _limit(task)
        return f"reading the file took longer than {limit:.0f} s (damaged or hostile content?)"

    def _fail(self, task: _Task, reason: str) -> None:
        if task.future.done():
            return
        parsed = Parsed(path_text(task.job.path), task.job.size, task.job.mtime, status=FAILED,
                        reason=reason)
        parsed.seconds = time.monotonic() - task.started
        task.future.set_result(parsed)

    def _kill_process(self, p: _Process) -> None:
        p.task = None
        with contextlib.suppress(Exception):
            p.process.kill()
        self._retire(p)

    def _retire(self, p: _Process) -> None:
        p.task = None
        with contextlib.suppress(ValueError):
            self._processes.remove(p)
        with contextlib.suppress(Exception):
            p.conn.close()
        with contextlib.suppress(Exception):
            p.process.join(timeout=0.5)

    def _stop_all(self) -> None:
        for p in list(self._processes):
            task = p.task
            if self._kill or task is not None:
                with contextlib.suppress(Exception):
                    p.process.kill()
            else:
                with contextlib.suppress(Exception):
                    p.conn.send(None)
            if task is not None and not task.future.done() and not task.future.cancel():
                self._fail(task, "indexing was stopped")
            self._retire(p)
        with self._guard:
            queued, self._queue = list(self._queue), deque()
        for task in queued:
            task.future.cancel()
