"""Text -> unit vectors: the Embedder protocol and its two implementations.

* `base`: the `Embedder` protocol (with its `Tokenizer`), the token counter the indexer chunks with.
* `builtin`: `BuiltinEmbedder`, all-MiniLM-L6-v2 fully offline on onnxruntime.
* `ollama`: `OllamaEmbedder`, a local Ollama's `/api/embed`.

Every embedder returns float32 rows of unit length, so a dot product is a cosine similarity.
"""

from ragdesk.core.embedding.base import (
    Embedder,
    EmbedderError,
    TokenCounter,
    Tokenizer,
    counting_tokenizer,
    input_tokenizer,
)
from ragdesk.core.embedding.builtin import (
    BUILTIN_MODEL,
    BUILTIN_PACKAGE,
    BUILTIN_PIP_NAME,
    GRAPH_VERSION,
    BuiltinEmbedder,
    BuiltinModelMissing,
    builtin_model_dir,
    default_cache_dir,
)
from ragdesk.core.embedding.ollama import OllamaEmbedder, OllamaModelMissing, OllamaUnreachable

__all__ = [
    "BUILTIN_MODEL",
    "BUILTIN_PACKAGE",
    "BUILTIN_PIP_NAME",
    "GRAPH_VERSION",
    "BuiltinEmbedder",
    "BuiltinModelMissing",
    "Embedder",
    "EmbedderError",
    "OllamaEmbedder",
    "OllamaModelMissing",
    "OllamaUnreachable",
    "TokenCounter",
    "Tokenizer",
    "builtin_model_dir",
    "counting_tokenizer",
    "default_cache_dir",
    "input_tokenizer",
]
