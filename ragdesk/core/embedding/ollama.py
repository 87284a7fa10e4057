"""The Ollama embedder: vectors from a local Ollama's `POST /api/embed`, through the client
ragdesk.core.ollama makes (no proxy from the environment, one TLS context per process)."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ragdesk.core.embedding.base import EmbedderError, Tokenizer
from ragdesk.core.ollama import describe_error, make_client

log = logging.getLogger("ragdesk.embed")

_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class OllamaUnreachable(EmbedderError):
    """Nothing answers at the configured Ollama host."""


class OllamaModelMissing(EmbedderError):
    """Ollama answers but does not have the model."""


class OllamaEmbedder:
    """Embeddings from a local Ollama (`POST /api/embed`) through the official client.

    The dimension is learned from the first answer (asking once with a probe text if it is read
    before anything was embedded). Ollama truncates over-long input itself; `count_tokens` is a
    conservative estimate, since the model's tokenizer is not available on this side.
    """

    tokenizer: Tokenizer | None = None  # Ollama's tokenizer is not available here: chunks are estimated

    def __init__(
        self,
        host: str,
        model: str,
        max_tokens: int = 512,
        batch_size: int = 64,
        timeout: float = 300.0,
        client: Any | None = None,
    ) -> None:
        self.host = host
        self.model = model
        self.name = f"ollama:{model}"
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._dimension: int | None = None
        self._client = client if client is not None else make_client(host, timeout, connect_timeout=10.0)

    def __repr__(self) -> str:
        return f"OllamaEmbedder(host={self.host!r}, model={self.model!r})"

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._embed_batch(["dimension probe"])
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; use embed_query() for one text")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = [self._embed_batch(list(texts[i : i + self.batch_size]))
                 for i in range(0, len(texts), self.batch_size)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        raise NotImplementedError("Ollama embeds texts, not token ids")

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed([text])[0]
        return vector

    def count_tokens(self, text: str) -> int:
        # Sub-word tokenizers split rare words; ~1.3 pieces per word/punctuation mark, plus the
        # special tokens, errs on the high side for English and code.
        return math.ceil(len(_WORDISH.findall(text)) * 1.3) + 2

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        import httpx
        import ollama

        try:
            response = self._client.embed(model=self.model, input=texts)
        except (ConnectionError, ollama.ResponseError, httpx.HTTPError) as error:
            raise self._failure(error) from None
        vectors = np.asarray(response["embeddings"], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise EmbedderError(
                f"Ollama at {self.host} returned {vectors.shape[0] if vectors.ndim else 0} vectors "
                f"for {len(texts)} texts with {self.model}; is it an embedding model?"
            )
        if self._dimension is None:
            self._dimension = int(vectors.shape[1])
            log.info("%s gives %d-dimensional vectors", self.name, self._dimension)
        elif vectors.shape[1] != self._dimension:
            raise EmbedderError(
                f"{self.name} changed dimension from {self._dimension} to {vectors.shape[1]}"
            )
        return _normalise(vectors)

    def _failure(self, error: Exception) -> EmbedderError:
        """What the client raised, as the error a user reads (the wording is ragdesk.core.ollama's)."""
        import httpx
        import ollama

        problem = describe_error(error, self.host, self.model)
        if isinstance(error, ollama.ResponseError):
            if error.status_code == 404:
                return OllamaModelMissing(f"{problem.message}: {problem.remedy}")
            return EmbedderError(f"{problem.message}, embedding with {self.model}: {problem.remedy}")
        if isinstance(error, httpx.TimeoutException):
            return EmbedderError(f"{problem.message}: {problem.remedy}")
        return OllamaUnreachable(f"{problem.message}: {problem.remedy}")


def _normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.ascontiguousarray(matrix / np.maximum(norms, 1e-12), dtype=np.float32)
