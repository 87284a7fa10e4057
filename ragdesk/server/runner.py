"""Running the LAN server: in the foreground (`ragdesk serve`) or on a background thread (GUI).

`ServerHandle` is the API the GUI uses::

    handle = ServerHandle(services, ServerConfig(host="0.0.0.0", port=8443))
    handle.start()              # binds, then serves on its own thread; raises RagdeskError
                                # (port in use, bad certificate) before returning
    handle.url                  # "https://<host>:8443/"
    handle.fingerprint          # SHA-256 of the certificate, "AB:CD:..." (None with plain HTTP)
    handle.cert_pem             # the certificate, for clients that pin it
    handle.tokens.create("ana", collections=["legal"], admin=False)  # -> (ApiToken, secret)
    handle.tokens.list(); handle.tokens.revoke("ana")               # effective at once
    handle.running              # True while it serves
    handle.stop()               # stops accepting, ends streams, flushes the audit log

The services' store must stay unlocked while the server runs (lock the vault after `stop()`).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import ipaddress
import logging
import socket
import ssl
import threading

import uvicorn
from fastapi import FastAPI

from ragdesk.app import Services
from ragdesk.errors import RagdeskError
from ragdesk.server import tls
from ragdesk.server.app import create_app
from ragdesk.server.auth import TokenRegistry
from ragdesk.server.config import ServerConfig
from ragdesk.server.connections import ConnectionTable, forwarding_hosts, guarded_protocol

log = logging.getLogger("ragdesk.server")


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket, so that 'address in use' is reported before serving starts."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host.strip("[]")).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host.strip("[]"), port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise RagdeskError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server with a deadline for the TLS handshake (asyncio's default is 60 s, which
    uvicorn does not let us change): a connection that never completes one holds a socket only
    as long as a slow request head may."""

    def __init__(self, config: uvicorn.Config, handshake_timeout: float | None) -> None:
        super().__init__(config)
        self.handshake_timeout = handshake_timeout

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        if self.handshake_timeout is None:
            await super().startup(sockets)
            return
        loop = asyncio.get_running_loop()
        # uvicorn calls loop.create_server(...) without the timeout: give it one for this call.
        loop.create_server = functools.partial(  # type: ignore[method-assign]
            loop.create_server, ssl_handshake_timeout=self.handshake_timeout)
        try:
            await super().startup(sockets)
        finally:
            del loop.create_server  # (the instance attribute: the class's method again)


def _loop() -> str:
    try:
        import uvloop  # noqa: F401 - imported only to see that it is installed

        return "uvloop"
    except ImportError:
        return "asyncio"


def settle_heap() -> None:
    """Collect once, then leave everything alive now (modules, the app, the vault's state) out
    of the garbage collector's full passes (`gc.freeze`): a process that only serves.

    Why: a full pass walked every object the server had loaded, ~130 ms with the interpreter
    lock held, every 8 s under load; each one made the searches behind it late and the
    admission refuse (CACM at 40 q/s: 17-27 of 1,178 refused, p95 315 ms; frozen: 3 refused,
    p95 170 ms, full passes 13 ms; RESULTS.md, issue 21). Objects made later are collected as
    before. Not for the desktop app sharing its vault: its windows come and go."""
    gc.collect()
    gc.freeze()


class ServerHandle:
    """One LAN server over `services`; see the module docstring."""

    def __init__(self, services: Services, config: ServerConfig | None = None,
                 tokens: TokenRegistry | None = None) -> None:
        self.services = services
        self.config = config or ServerConfig()
        self.tokens = tokens or TokenRegistry(services.store)
        self.identity: tls.Identity | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.connections: ConnectionTable | None = None  # open connections, once built
        self.app: FastAPI | None = None  # the application, once built

    # --- what the GUI shows -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._socket is None:
            return self.config.port
        return int(self._socket.getsockname()[1])

    @property
    def scheme(self) -> str:
        return "https" if self.config.tls else "http"

    @property
    def url(self) -> str:
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):
            addresses = tls.lan_addresses()
            host = next((a for a in addresses if ":" not in a), "127.0.0.1")
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}/"

    @property
    def fingerprint(self) -> str | None:
        return self.identity.fingerprint if self.identity else None

    @property
    def cert_pem(self) -> str | None:
        return self.identity.cert_pem if self.identity else None

    @property
    def running(self) -> bool:
        return (self._thread is not None and self._thread.is_alive()
                and bool(self._server and self._server.started))

    # --- building -----------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.config.tls:
            return None
        if self.config.cert_file or self.config.key_file:
            if not (self.config.cert_file and self.config.key_file):
                raise RagdeskError("give both --cert and --key, or neither")
            self.identity = tls.file_identity(self.config.cert_file, self.config.key_file)
        else:
            self.identity = tls.vault_identity(self.services.store)
        ctx = tls.server_context(self.identity)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def build(self) -> uvicorn.Server:
        """Bind, load the TLS identity and make the uvicorn server (not started yet)."""
        ssl_ctx = self._ssl_context()
        app = self.app = create_app(self.services, self.config, self.tokens,
                                    fingerprint=self.fingerprint, certificate=self.cert_pem)
        limits = self.config.limits
        trusted = self.config.trusted_proxies.strip()
        try:
            self.connections = ConnectionTable(limits.max_connections, limits.max_connections_per_client,
                                               trusted)
            forwarders = forwarding_hosts(trusted)
        except ValueError as exc:
            raise RagdeskError(f"trusted proxies: {exc}") from None
        uconfig = uvicorn.Config(
            app, host=self.config.host, port=self.config.port, loop=_loop(),
            http=guarded_protocol(self.connections, limits.head_timeout, limits.body_stall,
                                  limits.body_min_rate),
            lifespan="on", log_config=None, access_log=False, server_header=False,
            # Connections are capped by the protocol (idle ones make room); streams by the app.
            limit_concurrency=None, backlog=limits.max_connections,
            timeout_keep_alive=max(1, int(limits.keep_alive)), timeout_graceful_shutdown=3,
            # Forwarding headers only from the proxies named (none by default), never from
            # whoever happens to connect from 127.0.0.1.
            proxy_headers=bool(forwarders), forwarded_allow_ips=forwarders or None,
        )
        uconfig.load()
        uconfig.ssl = ssl_ctx  # built in memory: the key never touches the disk
        self._socket = bind(self.config.host, self.config.port, limits.max_connections)
        self._server = _Server(uconfig, handshake_timeout=limits.head_timeout if ssl_ctx else None)
        return self._server

    # --- running ------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve on this thread until Ctrl+C / SIGTERM (uvicorn handles the signals)."""
        server = self._server or self.build()
        assert self._socket is not None
        settle_heap()
        try:
            server.run(sockets=[self._socket])
        finally:
            self._close_socket()

    def start(self, timeout: float = 30.0) -> None:
        """Serve on a background thread; returns once requests are accepted."""
        if self._thread is not None:
            raise RagdeskError("the server is already running")
        server = self.build()
        sock = self._socket
        assert sock is not None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()/stop()
                self._error = exc
                log.exception("the LAN server stopped with an error")

        self._thread = threading.Thread(target=run, name="ragdesk-lan-server", daemon=True)
        self._thread.start()
        waited = 0.0
        while not server.started:
            if not self._thread.is_alive():
                self._thread = None
                self._close_socket()
                raise RagdeskError(f"the LAN server could not start: {self._error or 'unknown error'}")
            self._thread.join(0.02)
            waited += 0.02
            if waited > timeout:
                self.stop()
                raise RagdeskError("the LAN server did not start in time")
        log.info("LAN server on %s", self.url)

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                assert self._server is not None
                self._server.force_exit = True
                self._thread.join(5)
            self._thread = None
        self._close_socket()
        self._server = None

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ServerHandle:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
