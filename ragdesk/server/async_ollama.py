"""The asynchronous Ollama client the server streams answers with: the official
`ollama.AsyncClient` over aiohttp (through `httpx_aiohttp`'s transport).

Why aiohttp: Ollama streams one NDJSON line per token, and httpx's own HTTP/1.1 stack (httpcore
+ h11 + an anyio timeout per read) costs the event loop nearly three times what aiohttp's C
parser does per line; with hundreds of answers streaming, reading them was most of the loop's time
(benchmarks/RESULTS.md, LAN server). The host, the TLS context and the no-proxy rule are
ragdesk.core.ollama's, as for every other Ollama client.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from ragdesk.core.chat import ChatSettings
from ragdesk.core.ollama import tls_context


def async_ollama_client(settings: ChatSettings, max_connections: int | None = None) -> Any:
    """An asynchronous Ollama client for the event loop it is first used on.

    The connection pool is not capped below the server's stream limit (aiohttp's default of
    100 would make the 101st answer wait for a connection); idle connections are kept for the
    next answers."""
    import httpx
    import ollama

    def session() -> Any:  # made on first use, inside the loop that uses it
        import aiohttp

        connector = aiohttp.TCPConnector(limit=max_connections or 0, limit_per_host=0,
                                         keepalive_timeout=30, ssl=tls_context())
        return aiohttp.ClientSession(connector=connector, trust_env=False)  # no proxy from the environment

    return ollama.AsyncClient(
        host=settings.host,
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        transport=_aiohttp_transport()(client=session), trust_env=False)


def preload() -> None:
    """Import aiohttp, httpx and the ollama client now (the server calls it as it starts)."""
    import ollama  # noqa: F401 - imported for its side effect: loaded once, here

    _aiohttp_transport()


@functools.cache
def _aiohttp_transport() -> type:
    """`httpx_aiohttp.AiohttpTransport` raising the httpx errors httpx's own transport raises,
    which the core's `describe_error` tells apart: httpx_aiohttp maps a refused connection and
    a dropped stream alike to ConnectTimeout ("did not answer in time")."""
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

    class Transport(AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            with httpx_errors():
                response = await super().handle_async_request(request)
            # AiohttpTransport's responses always carry its AsyncByteStream
            response.stream = Stream(cast(httpx.AsyncByteStream, response.stream))
            return response

    return Transport
