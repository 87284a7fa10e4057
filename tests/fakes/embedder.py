"""A tiny deterministic embedder for tests that need vectors but not the real model:
hashed bag of words, unit length. Used through the same Embedder protocol as the real ones."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from ragdesk.core.embedding import Tokenizer

_WORD = re.compile(r"\w+")


class HashEmbedder:
    name = "test:hash-bow"
    max_tokens = 256
    tokenizer: Tokenizer | None = None  # no tokenizer file: the chunker estimates, texts are embedded

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little")
                out[row, h % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else 1.0 / np.sqrt(self.dimension)
        return out

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        raise NotImplementedError("the hash embedder embeds texts, not token ids")

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        return len(_WORD.findall(text)) + 2
