"""Composition root: builds the core services over one unlocked store and hands them out.

The command line, the GUI and the LAN server all start here, so each gets the same embedder
choice, the same options and the same store, passed in rather than looked up globally.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragdesk.core.audit import apply_retention
from ragdesk.core.chat import ChatService, ChatSettings
from ragdesk.core.embedding import BuiltinEmbedder, Embedder, OllamaEmbedder
from ragdesk.core.embedding.base import EmbedderError
from ragdesk.core.grounding import GroundingChecker
from ragdesk.core.indexing import Indexer, IndexOptions
from ragdesk.core.ollama import ollama_host
from ragdesk.core.retrieval import Retriever, SearchOptions
from ragdesk.core.store.base import Store
from ragdesk.core.system import single_threaded_blas

log = logging.getLogger("ragdesk.app")


@dataclass
class Services:
    """The core services over one open store: the embedder it is set to use, and indexers,
    retrievers and chat services built on demand with it. Closing it closes the store."""

    store: Store
    home: Path
    _embedder: Embedder | None = field(default=None, repr=False)
    # A process that only indexes (`ragdesk index`, `sync`) lets onnxruntime's idle threads
    # busy-wait between steps, which embeds a little faster. Everywhere else they sleep: spinning
    # threads take the cores from the keyword search and the vector scan beside a question.
    batch: bool = False
    _grounder: GroundingChecker | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        single_threaded_blas()  # (system.py says why: every process that opens a vault searches it)
        apply_retention(self.store)  # the audit log's retention setting, if one is set

    @property
    def embedder(self) -> Embedder:
        """The embedder the vault is set to use (the built-in one unless chosen otherwise);
        loaded on first use, since loading a model takes a moment."""
        if self._embedder is None:
            choice: dict[str, Any] = self.store.get_setting("embedder", {"kind": "builtin"})
            if choice.get("kind") == "ollama":
                self._embedder = OllamaEmbedder(host=ollama_host(self.store), model=choice["model"])
            else:
                self._embedder = BuiltinEmbedder(spinning=self.batch)
        return self._embedder

    @property
    def grounder(self) -> GroundingChecker:
        """The check of answers against their sources (issue 22): by meaning with the vault's
        embedder when it runs here (the built-in one), never Ollama's (a request per sentence);
        then with a built-in embedder of its own; by words and facts alone when the built-in
        model is not installed. One per Services, shared: so is its vector cache."""
        if self._grounder is None:
            embedder: Embedder | None = None
            current = self.embedder
            if not isinstance(current, OllamaEmbedder):
                embedder = current
            else:
                try:
                    embedder = BuiltinEmbedder()
                except EmbedderError as exc:
                    log.warning("grounding by words only: %s", exc)
            self._grounder = GroundingChecker(embedder)
        return self._grounder

    def forget_embedder(self) -> None:
        """The vault's embedder setting changed: the chosen one is loaded on next use."""
        self._embedder = None

    def indexer(self, **options: Any) -> Indexer:
        return Indexer(self.store, self.embedder, IndexOptions(**options))

    def retriever(self, **options: Any) -> Retriever:
        return Retriever(self.store, self.embedder, SearchOptions(**options))

    def chat_settings(self, model: str | None = None) -> ChatSettings:
        return ChatSettings(
            host=ollama_host(self.store),
            model=model or self.store.get_setting("chat_model"),
            num_ctx=self.store.get_setting("num_ctx"),
        )

    def chat(self, model: str | None = None) -> ChatService:
        return ChatService(self.store, self.retriever(), self.chat_settings(model),
                           grounder=self.grounder)

    def close(self) -> None:
        self.store.close()
