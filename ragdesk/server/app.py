"""The app factory: `create_app(services, config)` builds the FastAPI application over the core.

Routes (all but /health and the static web client need a bearer token):
  native           POST /api/v1/ask (SSE), POST /api/v1/search, GET /api/v1/me,
                   GET /api/v1/collections, GET|POST /api/v1/documents, DELETE /api/v1/documents/{id},
                   GET|POST /api/v1/tokens, DELETE /api/v1/tokens/{name} (admin tokens)
  OpenAI-style     GET /v1/models, POST /v1/chat/completions (stream or not)
  Ollama-style     GET /api/version, GET /api/tags, POST /api/chat (NDJSON stream or not)
  operations       GET /health, GET /ready, GET /metrics, GET /openapi.json, GET /docs
  web client       GET / and /static/* (resources/web)

Everything the routes share lives on one `ServerContext` (app.state.ctx): the token registry,
the throttle, the audit writer, remote conversations, the chat runner, the model catalog, the
metrics and the stream counters.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from ragdesk import __version__
from ragdesk.app import Services
from ragdesk.core.system import available_memory, process_rss
from ragdesk.paths import resource_dir
from ragdesk.server.auth import Principal, Throttle, TokenRegistry
from ragdesk.server.bridge import ChatRunner, ModelCatalog
from ragdesk.server.config import ServerConfig
from ragdesk.server.documents import Uploads
from ragdesk.server.metrics import CONTENT_TYPE_LATEST, Metrics
from ragdesk.server.middleware import Guard
from ragdesk.server.session import AuditWriter, ConversationMemory

log = logging.getLogger("ragdesk.server")

WEB_DIR = resource_dir("web")
MIN_FREE_DISK = 200 << 20
MIN_FREE_MEMORY = 200 << 20


class Overloaded(HTTPException):
    pass


class ServerContext:
    """What every route uses; created by `create_app`, started and stopped by its lifespan."""

    def __init__(self, services: Services, config: ServerConfig, tokens: TokenRegistry | None = None) -> None:
        limits = config.limits
        self.services = services
        self.config = config
        self.tokens = tokens or TokenRegistry(services.store)
        self.throttle = Throttle(limits.auth_failures, limits.auth_window)
        self.audit = AuditWriter(services.store)
        self.memory = ConversationMemory()
        self.runner = ChatRunner(services, self.memory, self.audit, max_streams=limits.max_streams)
        self.catalog = ModelCatalog(services)
        self.metrics = Metrics()
        self.uploads = Uploads(services, limits.max_upload_bytes)
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
        full, 429 when this token already streams its share."""
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
            self._streams += 1
            self._per_token[principal.name] = mine + 1
            self.runner.admitted()
            self.metrics.streams.set(self._streams)

    def release(self, principal: Principal) -> None:
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
        except Exception as exc:  # noqa: BLE001 - reported, not raised
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


def principal_of(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if principal is None:  # the guard lets no unauthenticated request reach a route
        raise HTTPException(401, "a valid bearer token is required")
    return principal


def create_app(services: Services, config: ServerConfig | None = None,
               tokens: TokenRegistry | None = None, fingerprint: str | None = None) -> FastAPI:
    """The LAN application over `services` (whose store must stay unlocked while it serves)."""
    from ragdesk.server import api, compat

    config = config or ServerConfig()
    ctx = ServerContext(services, config, tokens)
    ctx.fingerprint = fingerprint

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.start()
        try:
            yield
        finally:
            await ctx.runner.aclose()
            ctx.stop()

    app = FastAPI(
        title="RagDesk",
        version=__version__,
        description="Cited answers from this vault's documents. Every route but /health needs "
                    "`Authorization: Bearer <token>` (`ragdesk token create NAME`).",
        docs_url=None, redoc_url=None, lifespan=lifespan,
    )
    app.state.ctx = ctx

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return JSONResponse({"detail": exc.detail, "error": {"message": exc.detail, "code": exc.status_code}},
                            status_code=exc.status_code, headers=exc.headers)

    @app.get("/health", tags=["operations"], summary="Liveness (no token needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["operations"], summary="Readiness: vault, Ollama, disk, memory")
    async def ready(request: Request) -> JSONResponse:
        principal_of(request)
        ok, checks = await run_in_threadpool(ctx.readiness)
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics (text format)",
             response_class=PlainTextResponse)
    async def metrics(request: Request) -> Response:
        principal_of(request)
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api.router)
    app.include_router(compat.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _mount_web(app, config)
    app.add_middleware(Guard, ctx=ctx)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated description, with the bearer token every route but /health requires."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version, description=app.description,
                             routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "a client token from `ragdesk token create NAME`"}}
        schema["security"] = [{"bearer": []}]
        for method in schema["paths"].get("/health", {}).values():
            method["security"] = []
        app.openapi_schema = schema
    return app.openapi_schema


def _mount_web(app: FastAPI, config: ServerConfig) -> None:
    """The thin web client and, from the swagger-ui-bundle package, the API docs: no CDN."""
    web = WEB_DIR

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response((web / "index.html").read_bytes(), media_type="text/html; charset=utf-8")

    @app.get("/index.html", include_in_schema=False)
    async def index_html() -> Response:
        return await index()

    if config.docs:
        try:
            import swagger_ui_bundle

            swagger_dir = Path(swagger_ui_bundle.swagger_ui_path)
        except (ImportError, AttributeError):
            swagger_dir = None
        if swagger_dir is not None and (swagger_dir / "swagger-ui-bundle.js").is_file():
            app.mount("/static/swagger", StaticFiles(directory=swagger_dir), name="swagger")

            @app.get("/docs", include_in_schema=False)
            async def docs() -> Response:
                return Response((web / "docs.html").read_bytes(), media_type="text/html; charset=utf-8")
        else:
            log.info("swagger-ui-bundle is not installed: /docs is off (/openapi.json stays)")
    app.mount("/static", StaticFiles(directory=web), name="web")
