"""The guard every request passes first: throttling, authentication, body limits, security
headers, metrics and the audit trail (a plain ASGI middleware, so streams are not buffered).

Authentication happens here, before routing and body parsing, so a request without a valid
token gets 401 whatever its path or body (only /health and the static web client are public).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragdesk.server.context import ServerContext, log_failure

log = logging.getLogger("ragdesk.server.access")

PUBLIC_PATHS = frozenset({"/health", "/", "/index.html", "/favicon.ico", "/docs"})
PUBLIC_PREFIXES = ("/static/",)
UPLOAD_PATHS = ("/api/v1/documents",)

# The web client and everything else: scripts and styles from this origin only, nothing inline.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
# A year, the usual value; no includeSubDomains: other hosts of the domain are not ours to decide.
HSTS = b"max-age=31536000"
# Swagger UI sets style attributes in its markup; its scripts are still this origin's only.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def bearer(scope: Scope) -> str | None:
    name: bytes
    value: bytes
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1").strip()
            scheme, _, secret = text.partition(" ")
            if scheme.lower() == "bearer" and secret.strip():
                return secret.strip()
            return None
    return None


def header(scope: Scope, wanted: bytes) -> str | None:
    name: bytes
    value: bytes
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


class Guard:
    """The ASGI middleware around the whole app (see the module docstring)."""

    def __init__(self, app: ASGIApp, ctx: ServerContext) -> None:
        self.app = app
        self.ctx = ctx

    async def _refuse(self, send: Send, status: int, detail: str,
                      headers: list[tuple[bytes, bytes]] | None = None) -> None:
        body = json.dumps({"detail": detail, "error": {"message": detail, "code": status}}).encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            *self._security_headers("/api", self.ctx.config.tls), *(headers or [])]})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _security_headers(path: str, tls: bool) -> list[tuple[bytes, bytes]]:
        csp = DOCS_CSP if path == "/docs" or path.startswith("/static/swagger/") else CSP
        out = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cross-origin-resource-policy", b"same-origin"),
        ]
        if tls:  # this server terminates TLS (behind nginx, nginx sends it): browsers use HTTPS only
            out.append((b"strict-transport-security", HSTS))
        if not (path.startswith("/static/") or path in ("/", "/index.html", "/docs")):
            out.append((b"cache-control", b"no-store"))
        return out

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = self.ctx
        path: str = scope["path"]
        method: str = scope["method"]
        client = scope.get("client")
        address = client[0] if client else "unknown"
        started = time.perf_counter()
        status_box = [0]
        principal = None
        limits = ctx.config.limits

        if not is_public(path):
            wait = ctx.throttle.retry_after(address)
            if wait:
                ctx.metrics.throttled.inc()
                ctx.metrics.requests.labels("throttled", method, "429").inc()
                await self._refuse(send, 429, "too many failed sign-ins from this address; try later",
                                   [(b"retry-after", str(wait).encode())])
                return
            principal = ctx.tokens.verify(bearer(scope))
            if principal is None:
                ctx.throttle.failure(address)
                ctx.metrics.auth_failures.inc()
                ctx.metrics.requests.labels("unauthenticated", method, "401").inc()
                ctx.audit.add("api sign-in failed", address=address, method=method, path=path[:200],
                              reason="no token" if bearer(scope) is None else "unknown or revoked token")
                if ctx.throttle.retry_after(address):
                    ctx.audit.add("api address throttled", address=address,
                                  seconds=ctx.throttle.retry_after(address))
                await self._refuse(send, 401, "a valid bearer token is required",
                                   [(b"www-authenticate", b'Bearer realm="RagDesk"')])
                return
            scope.setdefault("state", {})["principal"] = principal

        limit = limits.max_upload_bytes if (method in ("POST", "PUT") and path in UPLOAD_PATHS) \
            else limits.max_body_bytes
        declared = header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:
                ctx.metrics.rejected.labels("body_size").inc()
                await self._refuse(send, 413, f"the request body is larger than {limit} bytes")
                self._account(scope, method, path, 413, started, principal, address)
                return

        received = [0]

        async def limited_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    ctx.metrics.rejected.labels("body_size").inc()
                    raise BodyTooLarge(limit)
            return message

        extra = self._security_headers(path, ctx.config.tls)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                names = {h[0].lower() for h in message.get("headers", [])}
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *(h for h in extra if h[0] not in names)]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except BodyTooLarge:
            raise
        except Exception as exc:  # a bug: logged without what the client sent, answered 500
            log_failure(method, path, exc)
            if not status_box[0]:
                await self._refuse(send, 500, "the server could not handle this request")
                status_box[0] = 500
        finally:
            self._account(scope, method, path, status_box[0] or 500, started, principal, address)

    def _account(self, scope: Scope, method: str, path: str, status: int, started: float,
                 principal: Any, address: str) -> None:
        route = scope.get("route")
        label = getattr(route, "path", None) or ("static" if path.startswith("/static/") else "other")
        elapsed = time.perf_counter() - started
        self.ctx.metrics.requests.labels(label, method, str(status)).inc()
        self.ctx.metrics.duration.labels(label).observe(elapsed)
        if principal is not None:
            self.ctx.audit.add("api access", token=principal.name, address=address, method=method,
                               path=path[:200], status=status, ms=round(elapsed * 1000, 1))
