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
    max_connections: int = 2048  # open connections; past it the longest-idle one is closed
    max_connections_per_client: int = 128  # from one address (a trusted proxy's are not counted)
    head_timeout: float = 10.0  # seconds from connecting (or from a request's first byte) to a
    #                             complete request head, TLS handshake included; then closed
    keep_alive: float = 30.0  # seconds an idle keep-alive connection stays open
    # A request body may go body_stall seconds without a byte, and past its first body_stall
    # seconds must have arrived at body_min_rate bytes/s on average; else the connection is closed
    # (a body trickled a byte at a time would hold a connection, and its place, for ever).
    body_stall: float = 20.0
    body_min_rate: float = 4096.0
    upload_parse_timeout: float = 300.0  # seconds one upload may take to read (its parser is killed)
    # Remote conversations (OpenAI/Ollama history, native follow-ups) are kept in memory: bounded.
    max_message_chars: int = 20_000  # one message of a chat request's history (413 beyond)
    max_conversation_chars: int = 100_000  # all messages of one conversation (413 beyond)
    max_memory_chars: int = 20_000_000  # all conversations: the least recently used are dropped


@dataclass(frozen=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: any free port (see ServerHandle.port)
    tls: bool = True
    cert_file: str | None = None  # user-provided certificate (chain) ...
    key_file: str | None = None  # ... and key; otherwise the vault's self-signed identity
    limits: Limits = Limits()
    # Reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; none by default: any local process could otherwise choose
    # the address the throttle and the audit log see (`serve --trusted-proxy`).
    trusted_proxies: str = ""
    docs: bool = True  # /docs (Swagger UI from the local swagger-ui-bundle package)
