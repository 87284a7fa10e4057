"""The LAN endpoint: an app factory over the core services, TLS and tokens. No Qt here.

`create_app(services, config)` (server.app) builds the FastAPI application; `ServerHandle`
(server.runner) runs it with uvicorn on a background thread for the GUI, or in the foreground
for `ragdesk serve`; `TokenRegistry` (server.auth) creates, lists, revokes and checks client
tokens. GUI use::

    from ragdesk.server import ServerConfig, ServerHandle
    handle = ServerHandle(services, ServerConfig(host="0.0.0.0", port=8443))
    handle.start()                                  # RagdeskError if it cannot (port in use, ...)
    handle.url, handle.fingerprint, handle.cert_pem # what to show the user
    token, secret = handle.tokens.create("ana", collections=None, admin=False)  # show secret once
    handle.tokens.list(); handle.tokens.revoke("ana")
    handle.stop()

See runner.py for the details, app.py for the routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragdesk.server.config import Limits, ServerConfig

if TYPE_CHECKING:
    from ragdesk.server.app import create_app
    from ragdesk.server.auth import TokenRegistry
    from ragdesk.server.runner import ServerHandle

__all__ = ["Limits", "ServerConfig", "ServerHandle", "TokenRegistry", "create_app"]


def __getattr__(name: str) -> Any:
    # FastAPI and uvicorn are imported only when the server is actually used.
    if name == "ServerHandle":
        from ragdesk.server.runner import ServerHandle

        return ServerHandle
    if name == "create_app":
        from ragdesk.server.app import create_app

        return create_app
    if name == "TokenRegistry":
        from ragdesk.server.auth import TokenRegistry

        return TokenRegistry
    raise AttributeError(name)
