"""What Ollama offers, as the server's model routes and model checks see it: `ModelCatalog`
caches Ollama's chat models and version (refreshed in the background every few seconds), so
listing models and checking a requested name costs no round trip per request.

"ragdesk" (`DEFAULT_MODEL_ALIAS`) is always listed and means the vault's default model.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from ragdesk.app import Services
from ragdesk.core.chat import OllamaInfo
from ragdesk.core.ollama import OllamaProblem
from ragdesk.server.futures import retrieve

log = logging.getLogger("ragdesk.server.catalog")

DEFAULT_MODEL_ALIAS = "ragdesk"


class ModelCatalog:
    """Ollama's chat models and version, cached; `None` names mean Ollama is unreachable.

    While the server runs (`start`), a thread asks again every ttl/2 seconds, so a request
    normally finds the catalog fresh and waits for nothing; when it is stale all the requests
    arriving together wait for one refresh (`ensure_fresh`), not one thread hop each."""

    def __init__(self, services: Services, ttl: float = 10.0) -> None:
        self.services = services
        self.ttl = ttl
        self._models: list[dict[str, Any]] | None = None
        self._version: str | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._chosen: str | None = None  # the vault's chat_model setting, read with the models
        self._pending: asyncio.Future[None] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        """Keep the catalog fresh from a background thread, starting now."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._keep_fresh, name="ragdesk-models", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(2)  # a daemon: a refresh stuck on a hung Ollama need not hold up stop

    def _keep_fresh(self) -> None:
        while True:
            try:
                with self._lock:
                    self.refresh()
            except Exception:  # e.g. the vault locked under it; requests retry
                log.exception("could not refresh the model list")
            if self._stop.wait(self.ttl / 2):
                return

    async def ensure_fresh(self) -> None:
        """Refresh first if stale (blocking work, off the loop; one refresh for all waiters)."""
        if time.monotonic() - self._checked <= self.ttl:
            return
        if self._pending is None or self._pending.done():
            self._pending = asyncio.get_running_loop().run_in_executor(None, self._fresh)
            self._pending.add_done_callback(retrieve)
        await asyncio.shield(self._pending)

    def refresh(self) -> None:
        """Ask Ollama (and the vault's chosen model) again; blocking, so not on the loop."""
        chosen = self.services.store.get_setting("chat_model")
        self._chosen = str(chosen) if chosen else None
        info = OllamaInfo(self.services.chat_settings())
        try:
            models = info.models()
            version = info.version()
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
        self._fresh()
        if self._chosen:
            return self._chosen
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
