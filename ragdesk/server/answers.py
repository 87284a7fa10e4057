"""Answers for remote clients: from the chat core to asynchronous streams, and back when a
client leaves (`ChatRunner`).

An answer is the core's three steps (`ChatService.begin / chat_request / finish`) with the
streaming in between done here, on the event loop, by the asynchronous Ollama client
(server.async_ollama): no thread per answer. `begin` (store reads, the search) is blocking CPU
work, so it runs on a small pool of one thread per two cores: a few searches at a time finish in
arrival order, where hundreds at once would all finish late and starve the loop of the GIL. The
searches embed their questions through one batching thread (server.capacity.QuestionEmbedder),
handed each question as soon as its answer is admitted; and an answer is admitted only while its
search can start within the latency budget (server.capacity.SearchQueue: `admit` raises QueueFull,
the server answers 503 at once). Everything else of an answer is a coroutine plus one task
reading the model's stream; what the task receives while the writer is busy goes out in one
write. When the HTTP side stops listening (client disconnect, timeout, server stop) that task is
cancelled, which closes the Ollama stream at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ragdesk.app import Services
from ragdesk.core.chat import (
    ChatEvent,
    ChatService,
    ChatSettings,
    ChatTurn,
    context_length,
    fit_context,
    pick_model,
)
from ragdesk.core.ollama import OllamaProblem
from ragdesk.core.retrieval import MAX_QUERY_CHARS, Retriever, SearchOptions
from ragdesk.server import async_ollama
from ragdesk.server.async_ollama import async_ollama_client
from ragdesk.server.capacity import ANSWER_BUDGET, QuestionEmbedder, SearchQueue
from ragdesk.server.futures import retrieve
from ragdesk.server.metrics import Metrics
from ragdesk.server.session import AuditWriter, ConversationMemory, RemoteStore

log = logging.getLogger("ragdesk.server.answers")

WRITE_GAP = 0.05  # seconds between an answer's writes after its first piece (unnoticed when reading)


@dataclass(frozen=True)
class Turn:
    """One earlier message of a stateless client's chat (OpenAI, Ollama): who said what."""

    role: str
    content: str


class _Ticket:
    """One admitted answer's place in the search queue, left once (search over, or never run)."""

    def __init__(self, queue: SearchQueue) -> None:
        self.queue = queue
        self.left = False
        queue.enter()

    def leave(self, seconds: float | None = None) -> None:
        if not self.left:
            self.left = True
            self.queue.leave(seconds)


# The ticket `admit` gave the request being handled: the route, its response and the answer's
# stream run in one context (Starlette), so `batches` and `release` find it there.
_ticket: contextvars.ContextVar[_Ticket | None] = contextvars.ContextVar("ragdesk_search_ticket",
                                                                         default=None)


class ChatRunner:
    """Runs chats: `begin` on a small thread pool, the model's stream on the event loop."""

    def __init__(self, services: Services, memory: ConversationMemory, audit: AuditWriter,
                 max_streams: int, workers: int | None = None, budget: float = ANSWER_BUDGET,
                 metrics: Metrics | None = None, write_gap: float = WRITE_GAP) -> None:
        self.services = services
        self.write_gap = write_gap
        self.memory = memory
        self.audit = audit
        self.max_streams = max_streams
        self.metrics = metrics
        # Searches on half the cores (at least one). The searches are mostly Python: a second
        # search thread on two cores made each search three times slower (28 -> 83 ms at 20 q/s)
        # and served fewer answers a second (about 20 against 30; benchmarks/RESULTS.md, issue 21).
        workers = workers or max(1, (os.cpu_count() or 2) // 2)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ragdesk-ask")
        self.queue = SearchQueue(workers, budget)
        self.questions = QuestionEmbedder(lambda: services.embedder)
        if metrics is not None:
            self.questions.on_batch = lambda n, _s: metrics.embed_batch.observe(n)
        self._clients: dict[tuple[str, float, float], Any] = {}
        self._context: dict[tuple[str, str], int] = {}  # (host, model) -> context window
        self._context_lookups: dict[tuple[str, str], asyncio.Future[int]] = {}
        self._watch: asyncio.Task[None] | None = None
        # Imported now, not by the first answer on the event loop (a tenth of a second during
        # which every other request waits, the first burst's refusals too).
        async_ollama.preload()

    # --- admission ----------------------------------------------------------------------------

    def admit(self) -> None:
        """Take a place in the search queue for the request being handled, or raise QueueFull
        (answer 503 now) when its search would wait past the budget."""
        self.queue.check()
        _ticket.set(_Ticket(self.queue))

    def release(self) -> None:
        """The request's answer is over: its place in the queue is given up if `batches` never
        ran (the client left before the stream started)."""
        ticket = _ticket.get()
        if ticket is not None:
            ticket.leave()

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.questions.close()

    async def _watch_loop(self, every: float = 0.05) -> None:
        """The event loop's lag: how late a 50 ms sleep wakes (a search holding the interpreter
        lock, or too much work on the loop, shows here)."""
        assert self.metrics is not None
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(every)
            lag = max(0.0, loop.time() - start - every)
            self.metrics.loop_lag.observe(lag)
            self.queue.loop_lag(lag)

    async def aclose(self) -> None:
        """Close the Ollama connections (on the loop that used them)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()

    def _client(self, settings: ChatSettings) -> Any:
        key = (settings.host, settings.timeout, settings.connect_timeout)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = async_ollama_client(settings, self.max_streams + 8)
        return client

    def _chat(self, owner: str, model: str | None) -> ChatService:
        """A ChatService for one answer (blocking: the settings are read from the vault)."""
        store = RemoteStore(self.services.store, self.memory, self.audit, owner)
        settings = self.services.chat_settings(model)
        if model:
            settings = replace(settings, model=model)
        # The questions are embedded on the QuestionEmbedder's own thread: no helper thread too.
        retriever = Retriever(self.services.store, self.questions, SearchOptions(), dense_on_helper=False)
        return ChatService(store, retriever, settings, grounder=self.services.grounder)

    def seed(self, owner: str, history: Sequence[Turn], title: str) -> int | None:
        """A conversation holding the turns a stateless client sent before its question."""
        turns = [t for t in history if t.role in ("user", "assistant") and t.content.strip()]
        if not turns:
            return None
        conv = self.memory.create(title, owner)
        for t in turns:
            self.memory.add(conv.id, owner, t.role, t.content, (), "complete", None)
        return conv.id

    # --- the model, asynchronously --------------------------------------------------------------

    async def _model(self, client: Any, settings: ChatSettings) -> str:
        if settings.model:
            return settings.model
        return pick_model(await client.list(), settings.host)

    async def _context_window(self, client: Any, settings: ChatSettings, model: str) -> int:
        """As `ChatService.context_window`, remembered per host and model for every answer
        (one lookup however many answers start together)."""
        if settings.num_ctx:
            return settings.num_ctx
        key = (settings.host, model)
        if key in self._context:
            return self._context[key]
        lookup = self._context_lookups.get(key)
        if lookup is None:
            lookup = self._context_lookups[key] = asyncio.ensure_future(self._look_up(client, model))
            lookup.add_done_callback(lambda _: self._context_lookups.pop(key, None))
            lookup.add_done_callback(retrieve)
        num_ctx = await asyncio.shield(lookup)
        self._context[key] = num_ctx
        return num_ctx

    @staticmethod
    async def _look_up(client: Any, model: str) -> int:
        try:
            length = context_length(await client.show(model))
        except Exception as exc:  # the chat call reports model problems
            if getattr(exc, "status_code", None) == 404:
                raise
            log.info("could not read %s's context length: %s", model, exc)
            length = None
        return fit_context(length)

    async def _read(self, chat: ChatService, turn: ChatTurn, pieces: deque[str],
                    wake: asyncio.Event) -> None:
        """Stream the answer into `pieces` (the caller adds them to the turn). Raises what went
        wrong; cancelling it closes the stream to Ollama."""
        try:
            settings = chat.settings
            client = self._client(settings)
            model = await self._model(client, settings)
            turn.model = model
            request = chat.chat_request(turn, model, await self._context_window(client, settings, model))
            turn.sources = turn.sources[: request.sources_used]
            stream = await client.chat(model=model, messages=request.messages, stream=True,
                                       options=request.options)
            done = False
            async with contextlib.aclosing(stream):
                async for part in stream:
                    if done:
                        continue  # read to the end, so the connection can be used again
                    piece = (part.message.content or "") if part.message else ""
                    if piece:
                        pieces.append(piece)
                        wake.set()
                    done = bool(part.done)
            if not done:
                raise OllamaProblem("the answer stream ended before Ollama said it was done", "try again")
        finally:
            wake.set()

    def _observe(self, waited: float, timings: Any) -> None:
        """Where a search's time went (metrics: the wait for a thread, then its parts)."""
        m = self.metrics
        if m is None:
            return
        m.search_wait.observe(waited)
        for part, ms in (("embed", timings.embed_ms), ("keyword", timings.keyword_ms),
                         ("vector", timings.vector_ms), ("total", timings.total_ms)):
            m.search_part.labels(part).observe(ms / 1000)

    # --- answers ------------------------------------------------------------------------------

    async def batches(
        self,
        owner: str,
        question: str,
        *,
        model: str | None,
        collection_ids: Sequence[int] | None,
        conversation_id: int | None = None,
        timeout: float = 300.0,
        on_done: Callable[[ChatEvent], None] | None = None,
    ) -> AsyncGenerator[list[ChatEvent], None]:
        """The chat's events as they come, in lists of what arrived together (under load one
        write carries many pieces). Leaving the iteration early cancels the chat: the stream to
        Ollama is closed and the answer kept so far is stored as stopped."""
        loop = asyncio.get_running_loop()
        if self.metrics is not None and self._watch is None:
            self._watch = asyncio.create_task(self._watch_loop())
        claim = threading.Lock()
        gone = False  # set under `claim`: nobody will take what `begin` produces
        started: list[tuple[ChatService, ChatTurn]] = []
        ticket = _ticket.get()
        if ticket is None or ticket.left:  # called without `admit` (tests, tools)
            ticket = _Ticket(self.queue)
        # Embedding starts now, while the answer waits for a search thread (the search's query
        # is the question with its white space folded, as core.followup gives it).
        key = self.questions.prepare(" ".join(question.split())[:MAX_QUERY_CHARS])
        queued = time.perf_counter()

        def begin() -> None:
            nonlocal gone
            if gone:  # the asker left while this waited for a thread
                return
            start = time.perf_counter()
            chat = self._chat(owner, model)
            try:
                turn = chat.begin(question, conversation_id, collection_ids)
            finally:
                ticket.leave(time.perf_counter() - start)
            self._observe(start - queued, chat.retriever.last_timings)
            with claim:
                if not gone:
                    started.append((chat, turn))
                    return
            chat.finish(turn, stopped=True)

        reader: asyncio.Task[None] | None = None
        finished = False
        try:
            async with asyncio.timeout(timeout):
                try:
                    await loop.run_in_executor(self.pool, begin)
                finally:
                    self.questions.release(key)
                chat, turn = started[0]
                yield [turn.sources_event()]
                pieces: deque[str] = deque()
                wake = asyncio.Event()
                reader = asyncio.create_task(self._read(chat, turn, pieces, wake))
                while True:
                    await wake.wait()
                    wake.clear()
                    batch = []
                    while pieces:
                        piece = pieces.popleft()
                        turn.add(piece)
                        batch.append(ChatEvent("token", text=piece))
                    if batch:
                        yield batch
                    if reader.done() and not pieces:
                        break
                    if batch and self.write_gap:
                        # What arrives meanwhile goes out in one write: a TLS record and a send
                        # per piece were the event loop's largest cost under load (RESULTS.md,
                        # issue 21). The first piece is never held back.
                        await asyncio.sleep(self.write_gap)
            error = reader.exception()
            # The grounding check may embed sentences: off the event loop (not on the search pool).
            await loop.run_in_executor(None, chat.check_turn, turn)
            finished = True
            batch = chat.finish(turn, error=error)
            if on_done is not None:
                on_done(batch[-1])
            yield batch
        finally:
            if not finished:
                with claim:
                    gone = True
                    if not started:
                        ticket.leave()  # cancelled while waiting: its search never ran
                if reader is not None and not reader.done():
                    reader.cancel()
                if started:
                    chat, turn = started[0]
                    chat.check_turn(turn, words_only=True)  # on the event loop: no model run
                    chat.finish(turn, stopped=True)
                log.debug("chat for %s cancelled (client gone or timed out)", owner)
            if reader is not None:
                reader.add_done_callback(retrieve)

