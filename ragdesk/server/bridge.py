"""From the synchronous chat core to asynchronous HTTP streams, and back when a client leaves.

`ChatService.ask()` is a blocking generator with one store connection per thread, so each answer
runs on a thread of `ChatRunner`'s own pool (sized to the stream limit, so an admitted stream
never waits for a thread); its events are handed to the event loop with
`call_soon_threadsafe`. When the HTTP side stops listening (client disconnect, timeout, server
stop) the chat is cancelled at once (`ChatService.cancel()`), which closes the Ollama stream.

`ModelCatalog` caches what Ollama offers (refreshed in the background every few seconds) so
listing models and checking a requested name costs no round trip per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ragdesk.app import Services
from ragdesk.core.chat import ChatEvent, ChatService, ChatSettings, OllamaProblem
from ragdesk.core.records import Message
from ragdesk.server.session import AuditWriter, ConversationMemory, RemoteStore

log = logging.getLogger("ragdesk.server.bridge")

DEFAULT_MODEL_ALIAS = "ragdesk"
_END = object()


_tls_for_ollama: Any = None


def ollama_client(settings: ChatSettings) -> Any:
    """An Ollama client like the core's `make_client`, sharing one TLS context: building
    httpx's default one loads the CA bundle, about 100 ms of CPU per answer otherwise."""
    global _tls_for_ollama
    import httpx
    import ollama

    if _tls_for_ollama is None:
        make = getattr(httpx, "create_ssl_context", None)
        _tls_for_ollama = make() if make is not None else ssl.create_default_context()
    return ollama.Client(host=settings.host,
                         timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
                         trust_env=False, verify=_tls_for_ollama)


class _ServerChat(ChatService):
    """A ChatService whose models' context lengths are remembered across requests (the core
    keeps them per instance, and the server makes one instance per answer)."""

    _shared_context: dict[tuple[str, str], int] = {}

    def context_window(self, client: Any, model: str) -> int:
        if self.settings.num_ctx:
            return self.settings.num_ctx
        key = (self.settings.host, model)
        if key not in self._shared_context:
            self._shared_context[key] = super().context_window(client, model)
        return self._shared_context[key]


@dataclass(frozen=True)
class Turn:
    role: str
    content: str


class ModelCatalog:
    """Ollama's chat models and version, cached; `None` names mean Ollama is unreachable."""

    def __init__(self, services: Services, ttl: float = 10.0) -> None:
        self.services = services
        self.ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._version: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self.error: str | None = None

    def refresh(self) -> None:
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
        chosen = self.services.store.get_setting("chat_model")
        if chosen:
            return str(chosen)
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


class _GatedRetriever:
    """A retriever that lets only a few searches run at once. Searching is CPU work in this
    interpreter: hundreds of threads searching together all finish late (and thrash the GIL);
    a few at a time finish in arrival order, so most answers start much sooner."""

    def __init__(self, inner: Any, gate: threading.BoundedSemaphore) -> None:
        self._inner = inner
        self._gate = gate

    def search(self, *args: Any, **kwargs: Any) -> Any:
        with self._gate:
            return self._inner.search(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class ChatRunner:
    """Runs chats on a bounded thread pool and streams their events to async code."""

    def __init__(self, services: Services, memory: ConversationMemory, audit: AuditWriter,
                 max_workers: int, search_concurrency: int | None = None) -> None:
        self.services = services
        self.memory = memory
        self.audit = audit
        self.pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ragdesk-chat")
        self.gate = threading.BoundedSemaphore(search_concurrency or max(2, (os.cpu_count() or 2)))

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _chat(self, owner: str, model: str | None) -> ChatService:
        store = RemoteStore(self.services.store, self.memory, self.audit, owner)
        settings = self.services.chat_settings(model)
        if model:
            settings = replace(settings, model=model)
        retriever = _GatedRetriever(self.services.retriever(), self.gate)
        return _ServerChat(store, retriever, settings, client_factory=ollama_client)  # type: ignore[arg-type]

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
        write carries many pieces). Leaving the iteration early cancels the chat."""
        loop = asyncio.get_running_loop()
        pending: deque[Any] = deque()
        wake = asyncio.Event()
        scheduled = threading.Lock()  # held while a wake-up is on its way to the loop
        stop = threading.Event()
        holder: dict[str, ChatService] = {}

        def woken() -> None:
            scheduled.release()
            wake.set()

        def put(item: Any) -> None:
            pending.append(item)
            if scheduled.acquire(blocking=False):  # one wake-up in flight is enough
                try:
                    loop.call_soon_threadsafe(woken)
                except RuntimeError:  # the loop is gone: nobody is listening
                    scheduled.release()

        def work() -> None:
            gen = None
            try:
                chat = self._chat(owner, model)
                holder["chat"] = chat
                if stop.is_set():
                    return
                gen = chat.ask(question, conversation_id=conversation_id, collection_ids=collection_ids)
                for event in gen:
                    put(event)
                    if stop.is_set():
                        break
            except BaseException as exc:  # noqa: BLE001 - handed to the async side
                put(exc)
            finally:
                if gen is not None:
                    with contextlib.suppress(Exception):
                        gen.close()
                put(_END)

        future = loop.run_in_executor(self.pool, work)
        finished = False
        try:
            async with asyncio.timeout(timeout):
                while not finished:
                    await wake.wait()
                    wake.clear()
                    batch: list[ChatEvent] = []
                    while pending:
                        item = pending.popleft()
                        if item is _END:
                            finished = True
                            break
                        if isinstance(item, BaseException):
                            finished = True
                            raise item
                        if item.kind == "done" and on_done is not None:
                            on_done(item)
                        batch.append(item)
                    if batch:
                        yield batch
        finally:
            if not finished:
                stop.set()
                chat = holder.get("chat")
                if chat is not None:
                    chat.cancel()
                log.debug("chat for %s cancelled (client gone or timed out)", owner)
            # Exceptions of the worker were delivered through the queue already.
            future.add_done_callback(lambda f: f.exception())
