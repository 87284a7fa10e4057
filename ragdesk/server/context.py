"""What the server's routes share: the `ServerContext` (one per app, at app.state.ctx) and the
helpers every route uses to read a request and to answer it.

The context holds the token registry, the throttle, the audit writer, remote conversations, the
chat runner, the model catalog, the uploads, the metrics and the stream counters; it admits an
answer's stream (503 when the server is full, 429 when a token streams its share) and says what
a token may read. The helpers: `ctx_of` and `principal_of` (the guard has put the principal on
the request), the validators of request text (`check_text`, `check_names`, `check_question`),
`relay` (an answer's events as the bytes of a response body) and `record_done` (its metrics).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ragdesk import __version__
from ragdesk.app import Services
from ragdesk.core.chat import ChatEvent
from ragdesk.core.system import available_memory, process_rss
from ragdesk.server.answers import ChatRunner
from ragdesk.server.auth import Principal, Throttle, TokenRegistry
from ragdesk.server.capacity import QueueFull
from ragdesk.server.catalog import ModelCatalog
from ragdesk.server.config import ServerConfig
from ragdesk.server.documents import Uploads
from ragdesk.server.metrics import Metrics
from ragdesk.server.session import AuditWriter, ConversationMemory

log = logging.getLogger("ragdesk.server")

MIN_FREE_DISK = 200 << 20
MIN_FREE_MEMORY = 200 << 20


class Overloaded(HTTPException):
    """The server or the token has no stream to spare (503 / 429, with Retry-After)."""


class ServerContext:
    """What every route uses; created by `create_app`, started and stopped by its lifespan."""

    def __init__(self, services: Services, config: ServerConfig, tokens: TokenRegistry | None = None) -> None:
        limits = config.limits
        self.services = services
        self.config = config
        self.tokens = tokens or TokenRegistry(services.store)
        self.throttle = Throttle(limits.auth_failures, limits.auth_window)
        self.audit = AuditWriter(services.store)
        self.memory = ConversationMemory(max_message_chars=limits.max_message_chars,
                                         max_conversation_chars=limits.max_conversation_chars,
                                         max_total_chars=limits.max_memory_chars)
        self.metrics = Metrics()
        self.runner = ChatRunner(services, self.memory, self.audit, max_streams=limits.max_streams,
                                 metrics=self.metrics)
        self.catalog = ModelCatalog(services)
        self.uploads = Uploads(services, limits.max_upload_bytes, limits.upload_parse_timeout)
        self.fingerprint: str | None = None
        self.started_at = time.time()
        self._streams = 0
        self._per_token: dict[str, int] = {}
        self._collections: tuple[float, dict[str, int]] = (0.0, {})
        self._lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.audit.start()
        self.catalog.start()  # the first requests then find the model list ready
        self.audit.add("server started", version=__version__, host=self.config.host,
                       tls=self.config.tls, fingerprint=self.fingerprint)

    def stop(self) -> None:
        self.catalog.stop()
        self.runner.shutdown()
        self.uploads.close()
        self.audit.add("server stopped")
        self.audit.stop()

    # --- streams ------------------------------------------------------------------------------

    @property
    def active_streams(self) -> int:
        return self._streams

    def admit(self, principal: Principal) -> None:
        """Reserve a stream slot (release with `release`), or refuse: 503 when the server is
        full or its searches could not start this answer's within the latency budget, 429 when
        this token already streams its share."""
        limits = self.config.limits
        with self._lock:
            if self._streams >= limits.max_streams:
                self.metrics.rejected.labels("server_busy").inc()
                raise Overloaded(503, "the server is busy; try again in a moment", {"Retry-After": "2"})
            mine = self._per_token.get(principal.name, 0)
            if mine >= limits.max_streams_per_token:
                self.metrics.rejected.labels("token_streams").inc()
                raise Overloaded(429, f"this token already has {mine} answers streaming; wait for one "
                                      "to finish", {"Retry-After": "1"})
            try:
                self.runner.admit()
            except QueueFull as full:
                self.metrics.rejected.labels("latency_budget").inc()
                raise Overloaded(503, "the server is busy; try again in a moment",
                                 {"Retry-After": str(full.retry_after)}) from None
            self._streams += 1
            self._per_token[principal.name] = mine + 1
            self.metrics.streams.set(self._streams)

    def release(self, principal: Principal) -> None:
        self.runner.release()
        with self._lock:
            self._streams -= 1
            left = self._per_token.get(principal.name, 1) - 1
            if left > 0:
                self._per_token[principal.name] = left
            else:
                self._per_token.pop(principal.name, None)
            self.metrics.streams.set(self._streams)

    def stream_response(self, principal: Principal, body: AsyncIterator[bytes], media_type: str,
                        headers: dict[str, str] | None = None) -> StreamingResponse:
        """A streamed response holding a slot reserved with `admit` until it ends, however."""
        return _SlotStream(self, principal, body, media_type=media_type, headers=headers)

    # --- scope --------------------------------------------------------------------------------

    def collection_ids_by_name(self) -> dict[str, int]:
        loaded, names = self._collections
        if time.monotonic() - loaded > 2.0:
            names = {c.name: c.id for c in self.services.store.collections()}
            self._collections = (time.monotonic(), names)
        return names

    def forget_collections(self) -> None:
        """Read the collections again on the next request (a new one may exist now)."""
        self._collections = (0.0, {})

    def collection_ids(self, principal: Principal, wanted: Sequence[str] | None) -> list[int] | None:
        """Collection ids a request may read: what it asked for, within the token's scope.
        None means every collection (an unscoped token that asked for none)."""
        by_name = self.collection_ids_by_name()
        if wanted:
            out = []
            for name in dict.fromkeys(wanted):
                if not principal.allows_collection(name):
                    raise HTTPException(403, f"this token may not read the collection {name!r}")
                if name not in by_name:
                    raise HTTPException(404, f"no collection named {name!r}")
                out.append(by_name[name])
            return out
        if principal.collections is None:
            return None
        # Scoped: only its collections; an id no document has when none exists yet.
        return [by_name[n] for n in principal.collections if n in by_name] or [-1]

    async def model_for(self, requested: str | None) -> tuple[bool, str | None]:
        await self.catalog.ensure_fresh()
        return self.catalog.resolve(requested)

    # --- health -------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {}
        ok = True
        try:
            st = self.services.store.status()
            checks["vault"] = {"ok": True, "documents": st.documents, "chunks": st.chunks}
        except Exception as exc:  # reported, not raised
            ok = False
            checks["vault"] = {"ok": False, "error": str(exc)}
        self.catalog.refresh()
        if self.catalog.error is None:
            checks["ollama"] = {"ok": True, "version": self.catalog.version(),
                                "models": [m["name"] for m in self.catalog.models() or []]}
        else:
            # Without Ollama answers are extractive: serving still works, so ready stays true.
            checks["ollama"] = {"ok": False, "error": self.catalog.error, "answers": "extractive"}
        free = shutil.disk_usage(self.services.home if self.services.home.exists() else Path.cwd()).free
        checks["disk"] = {"ok": free >= MIN_FREE_DISK, "free_bytes": free}
        ok = ok and checks["disk"]["ok"]
        available = available_memory()
        checks["memory"] = {"ok": available is None or available >= MIN_FREE_MEMORY,
                            "available_bytes": available, "rss_bytes": process_rss()}
        ok = ok and checks["memory"]["ok"]
        checks["streams"] = {"active": self._streams, "limit": self.config.limits.max_streams}
        return ok, checks


class _SlotStream(StreamingResponse):
    def __init__(self, ctx: ServerContext, principal: Principal, content: AsyncIterator[bytes],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._ctx = ctx
        self._principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._ctx.release(self._principal)


# --- reading a request ----------------------------------------------------------------------------


def ctx_of(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # the guard lets no unauthenticated request reach a route
        raise HTTPException(401, "a valid bearer token is required")
    return principal


def check_text(value: str | None) -> str | None:
    """Text must be valid Unicode (no lone surrogates: they cannot be stored or tokenized)."""
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode") from None
    return value


def check_names(names: list[str] | None) -> list[str] | None:
    """Each collection name, as `check_text`."""
    for name in names or []:
        check_text(name)
    return names


def check_question(ctx: ServerContext, text: str) -> str:
    limit = ctx.config.limits.max_question_chars
    if len(text) > limit:
        raise HTTPException(413, f"the question is longer than {limit} characters")
    if not text.strip():
        raise HTTPException(422, "the question is empty")
    return text


# --- answering ------------------------------------------------------------------------------------


async def relay(batches: AsyncGenerator[list[ChatEvent], None], encode: Callable[[ChatEvent], bytes], *,
                timed_out: bytes, failed: bytes, what: str,
                first: bytes = b"", last: bytes = b"") -> AsyncIterator[bytes]:
    """An answer's events as a response body, in the client's format (`encode`): what arrived
    together goes out in one write. When the answer cannot be finished the body says so in one
    last line (`timed_out`, `failed`) instead of breaking off; the answer stream is closed
    however the body ends (so a client that leaves stops the model)."""
    if first:
        yield first
    async with contextlib.aclosing(batches):
        try:
            async for batch in batches:
                data = b"".join(encode(e) for e in batch)
                if data:
                    yield data
        except TimeoutError:
            yield timed_out
        except Exception as exc:  # a bug: logged (not what was asked), the client told in one line
            log_failure("answer", what, exc)
            yield failed
    if last:
        yield last


def log_failure(method: str, path: str, exc: BaseException) -> None:
    """Log a request that failed with a bug: where it failed (the traceback's frames and source
    lines) and the exception's type, never its message or the request: both may carry what the
    client sent (a question, a document's text), which must not reach a plain-text log."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s %s failed with %s (message and request not logged):\n%s", method, path[:200],
              type(exc).__name__, frames.rstrip())


def record_done(ctx: ServerContext, event: ChatEvent) -> None:
    ctx.metrics.answers.labels(event.mode, event.status).inc()
    if event.first_token_ms is not None:
        ctx.metrics.first_token.observe(event.first_token_ms / 1000)
