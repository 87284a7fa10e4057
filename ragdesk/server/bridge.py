"""From the chat core to asynchronous HTTP streams, and back when a client leaves.

An answer is the core's three steps (`ChatService.begin / chat_request / finish`) with the
streaming in between done here, on the event loop, by `ollama.AsyncClient`: no thread per
answer. `begin` (store reads, the search) is blocking CPU work, so it runs on a small pool of
one thread per two cores: a few searches at a time finish in arrival order, where hundreds at
once would all finish late and starve the loop of the GIL. Everything else of an answer is a
coroutine plus one task reading the model's stream; what the task receives while the writer is
busy goes out in one write. When the HTTP side stops listening (client disconnect, timeout,
server stop) that task is cancelled, which closes the Ollama stream at once.

`ModelCatalog` caches what Ollama offers (refreshed in the background every few seconds) so
listing models and checking a requested name costs no round trip per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
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
from ragdesk.core.records import Message
from ragdesk.server.session import AuditWriter, ConversationMemory, RemoteStore

log = logging.getLogger("ragdesk.server.bridge")

DEFAULT_MODEL_ALIAS = "ragdesk"


_tls_for_ollama: Any = None


def _tls_context() -> ssl.SSLContext:
    # Building httpx's default context loads the CA bundle: about 100 ms of CPU, so once.
    global _tls_for_ollama
    if _tls_for_ollama is None:
        import httpx

        make = getattr(httpx, "create_ssl_context", None)
        _tls_for_ollama = make() if make is not None else ssl.create_default_context()
    return _tls_for_ollama


def ollama_client(settings: ChatSettings) -> Any:
    """A blocking Ollama client like the core's `make_client`, sharing one TLS context."""
    import httpx
    import ollama

    return ollama.Client(host=settings.host,
                         timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
                         trust_env=False, verify=_tls_context())


def async_ollama_client(settings: ChatSettings, max_connections: int | None = None) -> Any:
    """An asynchronous Ollama client for the event loop it is first used on.

    Its HTTP runs on aiohttp (`httpx_aiohttp`'s transport under the official client): Ollama
    streams one NDJSON line per token, and httpx's own HTTP/1.1 stack (httpcore + h11 + an anyio
    timeout per read) cost ~250 us of the event loop per line against ~90 us with aiohttp's C
    parser; 500 streams at 5 tokens/s each took 60 % of the loop before. The connection pool is
    not capped below the server's stream limit (aiohttp's default of 100 would make the 101st
    answer wait for a connection); idle connections are kept for the next answers."""
    import httpx
    import ollama

    def session() -> Any:  # made on first use, inside the loop that uses it
        import aiohttp

        connector = aiohttp.TCPConnector(limit=max_connections or 0, limit_per_host=0,
                                         keepalive_timeout=30, ssl=_tls_context())
        return aiohttp.ClientSession(connector=connector, trust_env=False)  # no proxy from the environment

    return ollama.AsyncClient(
        host=settings.host,
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        transport=_aiohttp_transport()(client=session), trust_env=False)


@functools.cache
def _aiohttp_transport() -> type:
    """`httpx_aiohttp.AiohttpTransport` raising the httpx errors httpx's own transport raises,
    which the core's `describe` tells apart: httpx_aiohttp maps a refused connection and a
    dropped stream alike to ConnectTimeout ("did not answer in time")."""
    import aiohttp
    import httpx
    from httpx_aiohttp import AiohttpTransport

    @contextlib.contextmanager
    def httpx_errors() -> Iterator[None]:
        try:
            yield
        except httpx.HTTPError as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.ClientConnectorError):
                raise httpx.ConnectError(str(cause)) from cause
            if isinstance(cause, aiohttp.ServerTimeoutError):
                raise httpx.ReadTimeout(str(cause)) from cause
            if isinstance(cause, (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
                raise httpx.RemoteProtocolError(f"{type(cause).__name__}: {cause}") from cause
            raise

    class Stream(httpx.AsyncByteStream):
        def __init__(self, inner: httpx.AsyncByteStream) -> None:
            self.inner = inner

        async def __aiter__(self) -> AsyncIterator[bytes]:
            with httpx_errors():
                async for chunk in self.inner:
                    yield chunk

        async def aclose(self) -> None:
            with httpx_errors():
                await self.inner.aclose()

    class Transport(AiohttpTransport):  # type: ignore[misc]
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            with httpx_errors():
                response = await super().handle_async_request(request)
            response.stream = Stream(response.stream)
            return response

    return Transport


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


class ModelCatalog:
    """Ollama's chat models and version, cached; `None` names mean Ollama is unreachable.

    While the server runs (`start`), a thread asks again every ttl/2 seconds, so a request
    normally finds the catalog fresh and waits for nothing; when it is stale all the requests
    arriving together wait for one refresh (`ensure_fresh`), not one thread hop each."""

    def __init__(self, services: Services, ttl: float = 10.0) -> None:
        self.services = services
        self.ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._version: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._chosen: str | None = None  # the vault's chat_model setting, read with the models
        self._pending: asyncio.Future[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        """Keep the catalog fresh from a background thread, starting now."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._keep_fresh, name="ragdesk-models", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(2)  # a daemon: a refresh stuck on a hung Ollama need not hold up stop

    def _keep_fresh(self) -> None:
        while True:
            try:
                with self._lock:
                    self.refresh()
            except Exception:  # noqa: BLE001 - e.g. the vault locked under it; requests retry
                log.exception("could not refresh the model list")
            if self._stop.wait(self.ttl / 2):
                return

    async def ensure_fresh(self) -> None:
        """Refresh first if stale (blocking work, off the loop; one refresh for all waiters)."""
        if time.monotonic() - self._checked <= self.ttl:
            return
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().run_in_executor(None, self._fresh)
            self._pending.add_done_callback(_retrieve)
        await asyncio.shield(self._pending)

    def refresh(self) -> None:
        """Ask Ollama (and the vault's chosen model) again; blocking, so not on the loop."""
        chosen = self.services.store.get_setting("chat_model")
        self._chosen = str(chosen) if chosen else None
        chat = ChatService(self.services.store, None, self.services.chat_settings(),  # type: ignore[arg-type]
                           client_factory=ollama_client)
        try:
            models = chat.models()
            version = chat.version()
            self._models, self._version, self.error = models, version, None
        except OllamaProblem as exc:
            self._models, self._version, self.error = None, None, exc.message
        self._checked = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._checked > self.ttl:
            with self._lock:
                if time.monotonic() - self._checked > self.ttl:
                    self.refresh()

    def models(self) -> list[dict[str, Any]] | None:
        """Chat models (embedding models left out); None when Ollama cannot be reached."""
        self._fresh()
        if self._models is None:
            return None
        return [m for m in self._models if "embed" not in (m.get("name") or "")
                and "bert" not in (m.get("family") or "")]

    def version(self) -> str | None:
        self._fresh()
        return self._version

    def default_model(self) -> str | None:
        self._fresh()
        if self._chosen:
            return self._chosen
        models = self.models()
        return models[0]["name"] if models else None

    def resolve(self, requested: str | None) -> tuple[bool, str | None]:
        """(known, model to use). The alias and no name mean the default model. A name Ollama
        does not have is unknown, unless Ollama is unreachable (then the answer is extractive
        whatever the name)."""
        name = (requested or "").strip()
        if not name or name in (DEFAULT_MODEL_ALIAS, f"{DEFAULT_MODEL_ALIAS}:latest"):
            return True, self.default_model()
        models = self.models()
        if models is None:
            return True, name
        for m in models:
            full = m["name"]
            if name == full or (":" not in name and full == f"{name}:latest"):
                return True, full
        return False, None


class ChatRunner:
    """Runs chats: `begin` on a small thread pool, the model's stream on the event loop."""

    def __init__(self, services: Services, memory: ConversationMemory, audit: AuditWriter,
                 max_streams: int, workers: int | None = None) -> None:
        self.services = services
        self.memory = memory
        self.audit = audit
        self.max_streams = max_streams
        # Searches on half the cores (at least one): the other half is the event loop's and the
        # vector search's helper threads'. 500 clients on 2 cores (RESULTS.md): one search
        # thread gave p95 first byte 39-60 ms and sources 3.6-5.8 s, two threads 68-113 ms and
        # 4.6-5.5 s; the searches are mostly Python, and a second thread only fights the loop
        # for the interpreter lock.
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
        return ChatService(store, self.services.retriever(), settings,  # type: ignore[arg-type]
                           client_factory=ollama_client)

    def seed(self, owner: str, history: Sequence[Turn], title: str) -> int | None:
        """A conversation holding the turns a stateless client sent before its question."""
        turns = [t for t in history if t.role in ("user", "assistant") and t.content.strip()]
        if not turns:
            return None
        conv = self.memory.create(title, owner)
        for t in turns:
            self.memory.add(conv.id, owner, t.role, t.content, (), "complete", None)
        return conv.id

    def history(self, owner: str, conversation_id: int) -> list[Message]:
        return self.memory.messages(conversation_id, owner)

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
            lookup.add_done_callback(_retrieve)
        num_ctx = await asyncio.shield(lookup)
        self._context[key] = num_ctx
        return num_ctx

    @staticmethod
    async def _look_up(client: Any, model: str) -> int:
        try:
            length = context_length(await client.show(model))
        except Exception as exc:  # noqa: BLE001 - the chat call reports model problems
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

    async def stream(self, owner: str, question: str, **kwargs: Any) -> AsyncIterator[ChatEvent]:
        """The chat's events one by one (see `batches`)."""
        batches = self.batches(owner, question, **kwargs)
        async with contextlib.aclosing(batches):
            async for batch in batches:
                for event in batch:
                    yield event

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
    ) -> AsyncIterator[list[ChatEvent]]:
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
                reader.add_done_callback(_retrieve)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a finished task's outcome as seen (it was delivered, or nobody is listening)."""
    if not task.cancelled():
        task.exception()
