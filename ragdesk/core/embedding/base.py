"""What every embedder is: the Embedder protocol, its tokenizer, and the token counter the
indexer's parser processes chunk with.

An embedder turns texts into unit-length float32 rows (a dot product is a cosine similarity).
Besides that it tells the indexer what the indexer needs to know about it -- nothing is probed
with getattr:

* `tokenizer`: its own tokenizer as a file a parser process can load (`Tokenizer`), so chunks
  are cut at exact token counts; None if it has none on this side (the chunker then estimates).
* `Tokenizer.takes_ids`: whether `embed_token_ids` takes the ids that tokenizer makes, so the
  parser processes tokenize beside the embedding instead of the embedder between its runs.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ragdesk.errors import RagdeskError


class EmbedderError(RagdeskError):
    """An embedder cannot run for a reason the user can fix (missing model, Ollama down, ...)."""


@dataclass(frozen=True)
class Tokenizer:
    """An embedder's own tokenizer: a Hugging Face `tokenizers` JSON file, loadable anywhere.

    `input_max_tokens` is set when the embedder takes this tokenizer's ids (`embed_token_ids`),
    truncated to that many tokens; None when it takes texts only."""

    file: str
    input_max_tokens: int | None = None

    @property
    def takes_ids(self) -> bool:
        return self.input_max_tokens is not None


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension.

    Not runtime-checkable on purpose: on Python 3.11 isinstance() would read `dimension`, which
    for OllamaEmbedder may mean a request to Ollama.
    """

    @property
    def name(self) -> str:
        """The model's identity as the vault records it, e.g. "builtin:all-MiniLM-L6-v2"."""
        ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """The model's input limit; longer texts are truncated by the model."""
        ...

    @property
    def tokenizer(self) -> Tokenizer | None:
        """Its exact tokenizer for counting chunk tokens, or None (the chunker estimates)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Shape (len(texts), dimension), float32, unit-length rows, in the order given."""
        ...

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """`embed` of texts already tokenized by `input_tokenizer(tokenizer.file,
        tokenizer.input_max_tokens)`: the same vectors. Called only when `tokenizer.takes_ids`;
        an embedder that takes texts only raises NotImplementedError."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Shape (dimension,), float32, unit length."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model would see for `text` (before truncation, special tokens included)."""
        ...


def counting_tokenizer(path: str) -> Any:
    """The tokenizer that counts a whole text's word pieces (the chunker needs the truth)."""
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = HFTokenizer.from_file(path)
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def input_tokenizer(path: str, max_tokens: int) -> Any:
    """The tokenizer that turns texts into the model's input ids (see embed_token_ids)."""
    from tokenizers import Tokenizer as HFTokenizer

    tokenizer = HFTokenizer.from_file(path)
    # tokenizer.json ships with truncation at 128 and fixed padding to 128; the model's limit
    # is 256, and embed() pads each length-sorted batch to its own longest text.
    tokenizer.enable_truncation(max_length=max_tokens)
    tokenizer.no_padding()
    return tokenizer


@functools.cache
def _process_counting_tokenizer(path: str) -> Any:
    """Loaded once per process: each parse job carries a fresh TokenCounter."""
    return counting_tokenizer(path)


@functools.cache
def _process_input_tokenizer(path: str, max_tokens: int) -> Any:
    return input_tokenizer(path, max_tokens)


class TokenCounter:
    """Counts word pieces with an embedder's `Tokenizer`; picklable, loads lazily per process.

    For an embedder that takes ids it also gives each chunk's model input ids (`input_ids`),
    so the parser tokenizes the chunks beside the embedding instead of the embedder doing it
    between its runs."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self._loaded: Any = None
        # Texts counted for the document being chunked, with their ids: most chunks are a block
        # the chunker counted as it is, and an encoding that fits the model's input is exactly
        # what its truncating tokenizer gives.
        self._counted: dict[str, list[int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"tokenizer": self.tokenizer, "_loaded": None, "_counted": {}}

    def __call__(self, text: str) -> int:
        if self._loaded is None:
            self._loaded = _process_counting_tokenizer(self.tokenizer.file)
        ids: list[int] = self._loaded.encode(text, add_special_tokens=True).ids
        limit = self.tokenizer.input_max_tokens
        if limit is not None and len(ids) <= limit:
            if len(self._counted) >= 4096:  # (a huge document: keep the memory small)
                self._counted.clear()
            self._counted[text] = ids
        return len(ids)

    def input_ids(self, texts: list[str]) -> list[list[int]] | None:
        """Each text's model input ids (None if the embedder takes texts); forgets the counts."""
        limit = self.tokenizer.input_max_tokens
        if limit is None:
            return None
        counted, self._counted = self._counted, {}
        found = [counted.get(t) for t in texts]
        missing = [i for i, ids in enumerate(found) if ids is None]
        encoded: dict[int, list[int]] = {}
        if missing:
            tokenizer = _process_input_tokenizer(self.tokenizer.file, limit)
            batch = tokenizer.encode_batch([texts[i] for i in missing], add_special_tokens=True)
            encoded = {i: e.ids for i, e in zip(missing, batch, strict=True)}
        return [ids if ids is not None else encoded[i] for i, ids in enumerate(found)]
