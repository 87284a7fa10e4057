"""The LAN server's settings: where it listens, how it encrypts, and the limits it enforces."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8443


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # any request body
    max_upload_bytes: int = 64 << 20  # an admin's document upload
    max_question_chars: int = 4000
    max_messages: int = 200  # in an OpenAI/Ollama chat request
    max_streams: int = 1000  # answers being streamed at once, all clients (503 beyond; RESULTS.md)
    max_streams_per_token: int = 8  # answers being streamed at once by one token (429 beyond)
    stream_timeout: float = 300.0  # one answer, start to end
    max_search_k: int = 50
    auth_failures: int = 10  # failed sign-ins from one address ...
    auth_window: float = 60.0  # ... within this many seconds: 429 until the window passes
    max_connections: int = 2048  # open connections + tasks (uvicorn answers 503 beyond)
    keep_alive: float = 30.0  # seconds an idle keep-alive connection stays open


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: any free port (see ServerHandle.port)
    tls: bool = True
    cert_file: str | None = None  # user-provided certificate (chain) ...
    key_file: str | None = None  # ... and key; otherwise the vault's self-signed identity
    limits: Limits = Limits()
    forwarded_allow_ips: str = "127.0.0.1"  # a reverse proxy there may set X-Forwarded-For
    docs: bool = True  # /docs (Swagger UI from the local swagger-ui-bundle package)
