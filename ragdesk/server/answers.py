"""Answers for remote clients: from the chat core to asynchronous streams, and back when a
client leaves (`ChatRunner`).

An answer is the core's three steps (`ChatService.begin / chat_request / finish`) with the
streaming in between done here, on the event loop, by the asynchronous Ollama client
(server.async_ollama): no thread per answer. `begin` (store reads, the search) is blocking CPU
work, so it runs on a small pool of one thread per two cores: a few searches at a time finish in
arrival order, where hundreds at once would all finish late and starve the loop of the GIL.
Everything else of an answer is a coroutine plus one task reading the model's stream; what the
task receives while the writer is busy goes out in one write. When the HTTP side stops listening
(client disconnect, timeout, server stop) that task is cancelled, which closes the Ollama stream
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
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
from ragdesk.server.async_ollama import async_ollama_client
from ragdesk.server.futures import retrieve
from ragdesk.server.session import AuditWriter, ConversationMemory, RemoteStore

log = logging.getLogger("ragdesk.server.answers")


@dataclass(frozen=True)
class Turn:
    """One earlier message of a stateless client's chat (OpenAI, Ollama): who said what."""

    role: str
    content: str


class ChatRunner:
    """Runs chats: `begin` on a small thread pool, the model's stream on the event loop."""

    def __init__(self, services: Services, memory: ConversationMemory, audit: AuditWriter,
                 max_streams: int, workers: int | None = None) -> None:
        self.services = services
        self.memory = memory
        self.audit = audit
        self.max_streams = max_streams
        # Searches on half the cores (at least one): the other half is the event loop's and the
        # vector search's helper threads'. The searches are mostly Python, so a further thread
        # only fights the loop for the interpreter lock (benchmarks/RESULTS.md, LAN server).
        self.pool = ThreadPoolExecutor(max_workers=workers or max(1, (os.cpu_count() or 2) // 2),
                                       thread_name_prefix="ragdesk-ask")
        self._clients: dict[tuple[str, float, float], Any] = {}
        self._context: dict[tuple[str, str], int] = {}  # (host, model) -> context window
        self._context_lookups: dict[tuple[str, str], asyncio.Future[int]] = {}
        self.admissions = 0  # requests admitted so far (see `_after_burst`)

    def admitted(self) -> None:
        self.admissions += 1

    async def _after_burst(self, quiet: float = 0.005, longest: float = 0.25) -> None:
        """Wait until no other request was admitted for `quiet` seconds (at most `longest`).
        A search holds the GIL for tens of milliseconds: started while a burst of requests is
        still arriving it slows down their admission (their first byte) for every one of them;
        started just after, it costs this answer a few milliseconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + longest
        seen = self.admissions
        while loop.time() < deadline:
            await asyncio.sleep(quiet)
            if self.admissions == seen:
                return
            seen = self.admissions

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def aclose(self) -> None:
        """Close the Ollama connections (on the loop that used them)."""
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
        return ChatService(store, self.services.retriever(), settings)

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
        claim = threading.Lock()
        gone = False  # set under `claim`: nobody will take what `begin` produces
        started: list[tuple[ChatService, ChatTurn]] = []

        def begin() -> None:
            nonlocal gone
            if gone:  # the asker left while this waited for a thread
                return
            chat = self._chat(owner, model)
            turn = chat.begin(question, conversation_id, collection_ids)
            with claim:
                if not gone:
                    started.append((chat, turn))
                    return
            chat.finish(turn, stopped=True)

        reader: asyncio.Task[None] | None = None
        finished = False
        try:
            async with asyncio.timeout(timeout):
                await self._after_burst()
                await loop.run_in_executor(self.pool, begin)
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
            error = reader.exception()
            finished = True
            batch = chat.finish(turn, error=error)
            if on_done is not None:
                on_done(batch[-1])
            yield batch
        finally:
            if not finished:
                with claim:
                    gone = True
                if reader is not None and not reader.done():
                    reader.cancel()
                if started:
                    chat, turn = started[0]
                    chat.finish(turn, stopped=True)
                log.debug("chat for %s cancelled (client gone or timed out)", owner)
            if reader is not None:
                reader.add_done_callback(retrieve)

