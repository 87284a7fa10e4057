"""The app factory: `create_app(services, config)` builds the FastAPI application over the core
from the routers (server.api, server.compat), the operations routes, the web client and the
guard (server.middleware).

Routes (all but /health and the static web client need a bearer token):
  native           POST /api/v1/ask (SSE), POST /api/v1/search, GET /api/v1/me,
                   GET /api/v1/collections, GET|POST /api/v1/documents, DELETE /api/v1/documents/{id},
                   GET|POST /api/v1/tokens, DELETE /api/v1/tokens/{name} (admin tokens)
  OpenAI-style     GET /v1/models, POST /v1/chat/completions (stream or not)
  Ollama-style     GET /api/version, GET /api/tags, POST /api/chat (NDJSON stream or not)
  operations       GET /health, GET /ready, GET /metrics, GET /openapi.json, GET /docs
  web client       GET / and /static/* (resources/web)

Everything the routes share lives on one `ServerContext` (server.context) at app.state.ctx.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from ragdesk import __version__
from ragdesk.app import Services
from ragdesk.paths import resource_dir
from ragdesk.server import api, compat
from ragdesk.server.auth import TokenRegistry
from ragdesk.server.capacity import EarlyRefusal
from ragdesk.server.config import ServerConfig
from ragdesk.server.context import Overloaded, ServerContext, principal_of
from ragdesk.server.health import HealthGauges
from ragdesk.server.metrics import CONTENT_TYPE_LATEST
from ragdesk.server.middleware import Guard

log = logging.getLogger("ragdesk.server")

WEB_DIR = resource_dir("web")


def create_app(services: Services, config: ServerConfig | None = None,
               tokens: TokenRegistry | None = None, fingerprint: str | None = None,
               certificate: str | None = None) -> FastAPI:
    """The LAN application over `services` (whose store must stay unlocked while it serves);
    `certificate`: the PEM this server presents, when it serves TLS itself (its expiry is a metric)."""
    config = config or ServerConfig()
    ctx = ServerContext(services, config, tokens)
    ctx.fingerprint = fingerprint
    gauges = HealthGauges(ctx.metrics.registry, services.home)
    if certificate:
        gauges.set_certificate(certificate)

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

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return invalid_request(exc)

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
        gauges.observe(*await run_in_threadpool(ctx.readiness))
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api.router)
    app.include_router(compat.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _mount_web(app, config)
    # Inside the guard (added before it): a question past the latency budget is refused before
    # its body is read (server/capacity.py).
    app.add_middleware(EarlyRefusal, queue=lambda: ctx.runner.queue,
                       refused=ctx.metrics.rejected.labels("latency_budget").inc)
    app.add_middleware(Guard, ctx=ctx)
    return app


def invalid_request(exc: RequestValidationError) -> Response:
    """422 saying which field is wrong and why, without echoing what was sent: the input may be
    a document's text, and may not even be encodable (a lone surrogate, `"\\ud800"`, is valid
    JSON but no UTF-8: FastAPI's own handler failed on it with a 500)."""
    errors = []
    for error in exc.errors():
        where = [part if isinstance(part, int) else _printable(str(part)) for part in error.get("loc", ())]
        errors.append({"loc": where, "msg": _printable(str(error.get("msg", ""))),
                       "type": _printable(str(error.get("type", "")))})
    body = json.dumps({"detail": errors}, ensure_ascii=True).encode("ascii")
    return Response(body, status_code=422, media_type="application/json")


def _printable(text: str) -> str:
    """`text` with anything UTF-8 cannot carry replaced (a field name a client made up)."""
    return text.encode("utf-8", "replace").decode("utf-8")


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
