"""A protocol-faithful fake Ollama server, for tests and benchmarks that cannot run the real one.

RagDesk talks to Ollama only through the official `ollama` client, so tests point that client at
this server instead (``ollama.Client(host=fake.host)``) and exercise the production code path. It
speaks Ollama's REST wire format as the real server (0.12.x) writes it: the routes, field names,
omitted-when-empty fields, NDJSON streaming over HTTP/1.1 chunked transfer encoding,
``{"error": "..."}`` bodies with the real status codes and messages.

What it answers:

- ``GET|HEAD /`` -> ``Ollama is running``; ``GET /api/version``; ``GET /api/tags``; ``GET /api/ps``;
  ``POST /api/show`` (``model_info`` with ``"<family>.context_length"``, ``capabilities``, ...).
- ``POST /api/embed`` and the legacy ``POST /api/embeddings``: deterministic hashed bag-of-words
  vectors of the model's ``embedding_length``, L2-normalised (``/api/embeddings`` returns the raw,
  unnormalised vector, as the real endpoint does), so texts that share words are closer.
- ``POST /api/chat`` and ``POST /api/generate``, streamed word by word or whole: an answer that
  cites the numbered sources found in the prompt (see `find_sources`), or a scripted reply
  (`FakeOllama.script`).

Fault modes (`FAULTS`) can be switched on and off at any time from any thread with
`FakeOllama.fault` / `FakeOllama.clear`; every request is recorded (`FakeOllama.requests`) and the
number of concurrent streams is counted. The server is asyncio with a small HTTP/1.1 parser on a
background thread, bound to 127.0.0.1 on an ephemeral port; it holds 500+ concurrent streams.

Run it by hand: ``python -m tests.fakes.ollama --port 11434``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

log = logging.getLogger("tests.fakes.ollama")

__all__ = [
    "DEFAULT_MODELS", "FAULTS", "FakeOllama", "Fault", "ModelSpec", "RecordedRequest",
    "cited_answer", "embed_text", "expand_script", "find_sources", "first_sentence", "model_spec",
    "normalize_model_name",
]

VERSION = "0.12.6"
DEFAULT_MODELS: tuple[str, ...] = ("llama3.2:3b", "nomic-embed-text")
DEFAULT_NUM_CTX = 4096  # what a real 0.12 server uses when the request sets no num_ctx
MAX_CITED_SOURCES = 5
MAX_SENTENCE_WORDS = 40

ALL_PATHS = "*"
GENERATION_PATHS = frozenset({"/api/chat", "/api/generate"})
INFERENCE_PATHS = GENERATION_PATHS | {"/api/embed", "/api/embeddings"}
MODEL_PATHS = INFERENCE_PATHS | {"/api/show"}

# name -> (paths it applies to by default, default value, what the value means)
FAULTS: dict[str, tuple[frozenset[str] | str, Any, str]] = {
    "refused": (ALL_PATHS, None, "stop listening: new connections are refused, idle ones closed"),
    "hang": (ALL_PATHS, None, "read the request, never answer (until stop or the client leaves)"),
    "slow_first_token": (INFERENCE_PATHS, 1.0, "seconds to wait before the response starts"),
    "slow_every_token": (GENERATION_PATHS, 0.1, "seconds to wait between streamed chunks"),
    "cut_mid_stream": (GENERATION_PATHS, 3, "close the connection after N chunks, no done line"),
    "error_mid_stream": (GENERATION_PATHS, 3, "after N chunks send an {'error'} line and end"),
    "unknown_model": (MODEL_PATHS | {"/api/tags", "/api/ps"}, None, "no model exists: 404"),
    "error_500": (INFERENCE_PATHS, "llama runner process has terminated: exit status 2",
                  "500 with this error message"),
    "busy": (INFERENCE_PATHS, "server busy, please try again.  maximum pending requests exceeded",
             "503 with this error message"),
}

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error", 503: "Service Unavailable"}
_ROUTES: dict[str, frozenset[str]] = {
    "/": frozenset({"GET", "HEAD"}),
    "/api/version": frozenset({"GET", "HEAD"}),
    "/api/tags": frozenset({"GET", "HEAD"}),
    "/api/ps": frozenset({"GET"}),
    "/api/show": frozenset({"POST"}),
    "/api/embed": frozenset({"POST"}),
    "/api/embeddings": frozenset({"POST"}),
    "/api/chat": frozenset({"POST"}),
    "/api/generate": frozenset({"POST"}),
}
_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class ModelSpec:
    """One installed model as /api/tags and /api/show describe it."""

    name: str
    family: str = "llama"
    parameter_size: str = "8.0B"
    quantization_level: str = "Q4_K_M"
    context_length: int = 8192
    embedding_length: int = 4096
    capabilities: tuple[str, ...] = ("completion", "tools")
    size: int = 4_920_753_328
    format: str = "gguf"

    @property
    def key(self) -> str:
        return normalize_model_name(self.name)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.key.encode()).hexdigest()


_LLAMA3_TEMPLATE = (
    "<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
    "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
)
_CHATML_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}"
    "<|im_start|>assistant\n"
)

# Figures as the real library models report them, so context-length logic sees real numbers.
_KNOWN: dict[str, dict[str, Any]] = {
    "llama3.2": dict(parameter_size="3.2B", context_length=131072, embedding_length=3072,
                     size=2_019_393_189),
    "llama3.2:1b": dict(parameter_size="1.2B", context_length=131072, embedding_length=2048,
                        size=1_321_098_329),
    "llama3.1": dict(parameter_size="8.0B", context_length=131072, embedding_length=4096,
                     size=4_920_753_328),
    "llama3": dict(parameter_size="8.0B", context_length=8192, embedding_length=4096,
                   size=4_661_224_676),
    "mistral": dict(parameter_size="7.2B", context_length=32768, embedding_length=4096,
                    size=4_372_824_384),
    "qwen2.5": dict(family="qwen2", parameter_size="7.6B", context_length=32768,
                    embedding_length=3584, size=4_683_087_332),
    "qwen3": dict(family="qwen3", parameter_size="4.0B", context_length=40960,
                  embedding_length=2560, size=2_497_293_918,
                  capabilities=("completion", "tools", "thinking")),
    "deepseek-r1": dict(family="qwen2", parameter_size="7.6B", context_length=131072,
                        embedding_length=3584, size=4_683_075_271,
                        capabilities=("completion", "thinking")),
    "gemma3": dict(family="gemma3", parameter_size="4.3B", context_length=131072,
                   embedding_length=2560, size=3_338_801_804,
                   capabilities=("completion", "vision")),
    "nomic-embed-text": dict(family="nomic-bert", parameter_size="137M", quantization_level="F16",
                             context_length=2048, embedding_length=768, size=274_302_450,
                             capabilities=("embedding",)),
    "all-minilm": dict(family="bert", parameter_size="23M", quantization_level="F16",
                       context_length=512, embedding_length=384, size=45_960_996,
                       capabilities=("embedding",)),
    "mxbai-embed-large": dict(family="bert", parameter_size="334M", quantization_level="F16",
                              context_length=512, embedding_length=1024, size=669_615_493,
                              capabilities=("embedding",)),
}


def normalize_model_name(name: str) -> str:
    """`nomic-embed-text` -> `nomic-embed-text:latest`, lower-cased, as Ollama resolves names."""
    name = name.strip().lower()
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def model_spec(name: str) -> ModelSpec:
    """The spec for a library model name, with the real model's figures when it is a known one."""
    key = normalize_model_name(name)
    base, tag = key.rsplit(":", 1)
    base = base.rsplit("/", 1)[-1]
    fields = _KNOWN.get(f"{base}:{tag}") or _KNOWN.get(base) or {}
    return ModelSpec(name=name, **fields)


# --------------------------------------------------------------------------- answers

_TAG_WITH_ID = re.compile(
    r"<(?P<tag>[A-Za-z][\w:.-]*)\b[^>]*?\bid\s*=\s*[\"']?(?P<n>\d{1,4})\b[\"']?[^>]*>", re.S
)
_LINE_MARKER = re.compile(
    r"^[ \t>*\-]*(?:\[(?P<a>\d{1,4})\]|\[source[ \t]+(?P<b>\d{1,4})\]"
    r"|source[ \t]+(?P<c>\d{1,4})[ \t]*[:.)\-])[ \t:.\-]*(?P<rest>.*)$",
    re.I,
)
_ANY_TAG = re.compile(r"<[^>]+>")
_SENTENCE = re.compile(r"^(.+?[.!?])(?=\s|$)", re.S)
_QUESTION = re.compile(r"^[ \t]*(?:question|query)[ \t]*:[ \t]*(?P<q>.*\S.*)$", re.I | re.M)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_PIECE = re.compile(r"\s*\S+|\s+$")


def find_sources(text: str) -> dict[int, str]:
    """Numbered sources in a prompt: ``<tag id="n" ...>text</tag>`` and lines starting ``[n]``.

    A ``[n]`` (or ``Source n:``) source runs from its marker to the next marker or blank line.
    The first occurrence of a number wins.
    """
    sources: dict[int, str] = {}
    rest: list[str] = []
    pos = 0
    matches = list(_TAG_WITH_ID.finditer(text))
    for i, m in enumerate(matches):
        if m.start() < pos:
            continue  # nested inside the previous source's span
        rest.append(text[pos:m.start()])
        close = text.find(f"</{m['tag']}>", m.end())
        nxt = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        end = close if close != -1 else nxt
        body = _ANY_TAG.sub(" ", text[m.end():end])
        sources.setdefault(int(m["n"]), " ".join(body.split()))
        pos = end + len(f"</{m['tag']}>") if close != -1 else end
    rest.append(text[pos:])

    current: int | None = None
    lines_of: dict[int, list[str]] = {}
    for line in "".join(rest).splitlines():
        m = _LINE_MARKER.match(line)
        if m:
            n = int(m["a"] or m["b"] or m["c"])
            current = None if n in sources or n in lines_of else n
            if current is not None:
                lines_of[n] = [m["rest"]] if m["rest"].strip() else []
        elif current is not None:
            if line.strip():
                lines_of[current].append(line)
            elif lines_of[current]:
                current = None  # a blank line after some text ends the source
    for n, lines in lines_of.items():
        sources[n] = " ".join(" ".join(lines).split())
    return {n: sources[n] for n in sorted(sources)}


def first_sentence(text: str, max_words: int = MAX_SENTENCE_WORDS) -> str:
    """The first sentence of `text`, without its closing punctuation, at most `max_words` long."""
    text = " ".join(text.split())
    m = _SENTENCE.match(text)
    sentence = m.group(1) if m else text
    words = sentence.split()[:max_words]
    return " ".join(words).rstrip(".!?;:, ")


def estimate_tokens(text: str) -> int:
    """A rough token count (words and punctuation marks), used for the *_count fields."""
    return len(_TOKEN.findall(text))


def question_of(text: str, sources: Mapping[int, str]) -> str:
    """The question in a user message: after ``Question:`` if marked, else its last plain line."""
    marked = list(_QUESTION.finditer(text))
    m = marked[-1] if marked else None  # the last "Question:" wins
    if m:
        candidate = m["q"]
    elif sources:
        lines = [ln for ln in find_sources_free_lines(text) if ln.strip()]
        candidate = lines[-1] if lines else ""
    else:
        candidate = text
    candidate = " ".join(candidate.split())
    return candidate[:200]


def find_sources_free_lines(text: str) -> list[str]:
    """The lines of `text` outside any source (tags with ids removed, `[n]` blocks dropped)."""
    text = _TAG_WITH_ID.sub("\n", text)
    text = re.sub(r"</[A-Za-z][\w:.-]*>", "\n", text)
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if _LINE_MARKER.match(line):
            inside = True
            continue
        if inside and line.strip():
            continue
        inside = False
        out.append(line)
    return out


def cited_answer(sources: Mapping[int, str], question: str) -> str:
    """The fake model's deterministic answer: one cited sentence per source, or a refusal."""
    cited = [(n, first_sentence(t)) for n, t in sources.items() if first_sentence(t)]
    if not cited:
        return f'I could not find an answer to "{question}" in the provided documents.'
    parts = [f"{s} [{n}]." for n, s in cited[:MAX_CITED_SOURCES]]
    return "Based on the sources, " + " ".join(parts)


def expand_script(reply: str, sources: Mapping[int, str]) -> str:
    """A scripted reply with each ``{source:N}`` replaced by source N's first sentence (empty if
    the prompt has no source N); the rest of the text as it is."""
    return re.sub(r"\{source:(\d{1,4})\}", lambda m: first_sentence(sources.get(int(m.group(1)), "")),
                  reply)


def split_pieces(text: str) -> list[str]:
    """Stream pieces: one word each, with its leading whitespace, joining back to `text`."""
    return _PIECE.findall(text) or [text]


# --------------------------------------------------------------------------- embeddings


def _bag_of_words(text: str, dim: int) -> list[float]:
    vec = [0.0] * dim
    words = _WORD.findall(text.lower()) or ["\x00empty"]
    for word in words:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if h >> 63 else -1.0
    return vec


def _normalize(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vec))
    norm = max(norm, 1e-12)
    return [x / norm for x in vec]


def embed_text(text: str, dim: int, dimensions: int | None = None) -> list[float]:
    """The deterministic, L2-normalised embedding /api/embed returns for `text`."""
    vec = _normalize(_bag_of_words(text, dim))
    if dimensions and 0 < dimensions < len(vec):
        vec = _normalize(vec[:dimensions])
    return [round(x, 7) for x in vec]


# --------------------------------------------------------------------------- records


@dataclass
class RecordedRequest:
    """One request the fake received; `outcome` is filled in when its response ends."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    received_at: float
    prompt_tokens: int | None = None  # estimated tokens of the whole prompt, before truncation
    status: int | None = None
    outcome: str = "pending"  # ok | error | cut | hang | client_gone | pending

    @property
    def model(self) -> str | None:
        return self.body.get("model") if isinstance(self.body, dict) else None

    @property
    def options(self) -> dict[str, Any]:
        opts = self.body.get("options") if isinstance(self.body, dict) else None
        return opts if isinstance(opts, dict) else {}

    @property
    def messages(self) -> list[dict[str, Any]]:
        msgs = self.body.get("messages") if isinstance(self.body, dict) else None
        return msgs if isinstance(msgs, list) else []

    @property
    def prompt_text(self) -> str:
        """All the text the model would see: system, messages and prompt, joined."""
        if not isinstance(self.body, dict):
            return ""
        parts = [self.body.get("system") or ""]
        parts += [m.get("content") or "" for m in self.messages if isinstance(m, dict)]
        parts.append(self.body.get("prompt") or "")
        return "\n".join(p for p in parts if isinstance(p, str) and p)


@dataclass
class Fault:
    """A fault mode that is on: the paths it hits, how many more times (None: until cleared)."""

    name: str
    value: Any
    paths: frozenset[str] | str
    remaining: int | None = None

    def applies_to(self, path: str) -> bool:
        return self.paths == ALL_PATHS or path in self.paths


class _HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Request:
    method: str
    path: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return conn == "keep-alive"
        return conn != "close"


@dataclass
class _Generation:
    """What a chat or generate request will stream back."""

    thinking: list[str]
    content: list[str]
    prompt_tokens: int
    prompt_eval_count: int
    started: float
    loaded: float = 0.0
    extra_final: dict[str, Any] = field(default_factory=dict)


def _now_rfc3339() -> str:
    ns = time.time_ns()
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ns % 1_000_000_000:09d}Z"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# --------------------------------------------------------------------------- the server


class FakeOllama:
    """An Ollama-compatible server on 127.0.0.1 for tests: ``with FakeOllama() as fake: ...``.

    `models` are names (known library models get their real figures, see `model_spec`) or
    `ModelSpec`s. Everything public is safe to call from any thread while the server runs.
    """

    def __init__(
        self,
        models: Iterable[str | ModelSpec] = DEFAULT_MODELS,
        *,
        port: int = 0,
        version: str = VERSION,
        backlog: int = 2048,
    ) -> None:
        specs = [m if isinstance(m, ModelSpec) else model_spec(m) for m in models]
        self.models: dict[str, ModelSpec] = {s.key: s for s in specs}
        self.version = version
        self.responder: Callable[[RecordedRequest], str] | None = None
        self._port = port
        self._backlog = backlog
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._script: deque[str] = deque()
        self._requests: list[RecordedRequest] = []
        self._loaded: dict[str, float] = {}
        self._active_streams = 0
        self._peak_streams = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: set[asyncio.StreamWriter] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FakeOllama:
        """Start serving on a background thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._listen())
            except BaseException as exc:  # reported to start()'s caller
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-ollama", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            self._thread = None
            raise failure[0]
        log.debug("fake Ollama listening on %s", self.host)
        return self

    def stop(self) -> None:
        """Close the listener and every connection (hanging ones too) and end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """The base URL to hand to ``ollama.Client(host=...)``."""
        return f"http://127.0.0.1:{self._port}"

    @staticmethod
    def unused_host() -> str:
        """A loopback URL where nothing listens (connections are refused)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    # ------------------------------------------------------------------ faults and script

    def fault(
        self,
        name: str,
        value: Any = None,
        *,
        paths: Iterable[str] | str | None = None,
        times: int | None = None,
    ) -> None:
        """Switch a fault mode on (see `FAULTS` for names, default paths and what value means).

        ``paths`` narrows or widens where it applies ("*" = every path); ``times`` makes it
        apply to that many matching requests only. Setting a fault again replaces it.
        """
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(FAULTS))}")
        default_paths, default_value, _ = FAULTS[name]
        if paths is None:
            scope: frozenset[str] | str = default_paths
        elif paths == ALL_PATHS:
            scope = ALL_PATHS
        else:
            scope = frozenset([paths] if isinstance(paths, str) else paths)
        with self._lock:
            self._faults[name] = Fault(name, default_value if value is None else value, scope,
                                       times)
        if name == "refused":
            self._call(self._stop_listening())

    def clear(self, name: str | None = None) -> None:
        """Switch one fault mode off, or all of them."""
        with self._lock:
            names = [name] if name else list(self._faults)
            removed = [self._faults.pop(n, None) for n in names]
        if any(f is not None and f.name == "refused" for f in removed):
            self._call(self._listen())

    @property
    def faults(self) -> dict[str, Fault]:
        with self._lock:
            return {n: replace(f) for n, f in self._faults.items()}

    def script(self, *replies: str) -> None:
        """Queue exact reply texts: each chat/generate answer takes the next one, then it's back
        to the cited answer. A reply may quote the prompt's sources, so that a test can script
        an answer with supported and unsupported sentences without knowing the passages found:
        ``{source:N}`` becomes source N's first sentence (see `expand_script`)."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        """Forget faults, script, recorded requests and counters (the listener stays as it is)."""
        self.clear()
        with self._lock:
            self._script.clear()
            self._requests.clear()
            self._peak_streams = self._active_streams

    # ------------------------------------------------------------------ observations

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def last_request(self, path: str | None = None) -> RecordedRequest:
        found = [r for r in self.requests if path is None or r.path == path]
        if not found:
            raise LookupError(f"no request to {path or 'any path'} was received")
        return found[-1]

    @property
    def active_streams(self) -> int:
        """Streaming chat/generate responses in flight right now."""
        return self._active_streams

    @property
    def peak_streams(self) -> int:
        """The most streaming responses that were in flight at once."""
        return self._peak_streams

    # ------------------------------------------------------------------ internals: plumbing

    def _call(self, coro: Any) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    async def _listen(self) -> None:
        if self._stopping is None:
            self._stopping = asyncio.Event()
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", self._port, backlog=self._backlog,
            reuse_address=True,
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._idle):  # a dead server also drops its keep-alive connections
            writer.close()

    async def _shutdown(self) -> None:
        await self._stop_listening()
        if self._stopping is not None:
            self._stopping.set()
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _faults_for(self, path: str) -> dict[str, Fault]:
        hit: dict[str, Fault] = {}
        with self._lock:
            for name, f in list(self._faults.items()):
                if name == "refused" or not f.applies_to(path):
                    continue
                hit[name] = replace(f)
                if f.remaining is not None:
                    f.remaining -= 1
                    if f.remaining <= 0:
                        del self._faults[name]
        return hit

    def _refusing(self) -> bool:
        with self._lock:
            return "refused" in self._faults

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            while True:
                self._idle.add(writer)
                try:
                    request = await self._read_request(reader)
                finally:
                    self._idle.discard(writer)
                if request is None:
                    break
                keep = await self._dispatch(request, reader, writer)
                if not keep or not request.keep_alive or self._refusing():
                    break
        except _HttpError as exc:
            with contextlib.suppress(Exception):
                await self._send(writer, exc.status, _dumps({"error": exc.message}), keep=False)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception:  # a bug in the fake: say so in the test log, keep serving others
            log.exception("fake Ollama failed on a request")
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        line = await reader.readline()
        if not line:
            return None
        while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between requests
            line = await reader.readline()
            if not line:
                return None
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise _HttpError(400, "malformed request line") from None
        headers: dict[str, str] = {}
        size = 0
        while True:
            hline = await reader.readline()
            size += len(hline)
            if size > _MAX_HEADER_BYTES:
                raise _HttpError(400, "request headers too large")
            if hline in (b"\r\n", b"\n", b""):
                break
            name, _, value = hline.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts: list[bytes] = []
            while True:
                size_line = await reader.readline()
                n = int(size_line.split(b";")[0].strip() or b"0", 16)
                if n == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(await reader.readexactly(n))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif headers.get("content-length"):
            n = int(headers["content-length"])
            if n > _MAX_BODY_BYTES:
                raise _HttpError(400, "request body too large")
            body = await reader.readexactly(n)
        path = target.split("?", 1)[0]
        return _Request(method.upper(), path, version.upper(), headers, body)

    async def _send(self, writer: asyncio.StreamWriter, status: int, body: bytes, *,
                    content_type: str = "application/json; charset=utf-8", keep: bool = True,
                    head: bool = False) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Content-Type: {content_type}",
            f"Date: {formatdate(usegmt=True)}",
            f"Content-Length: {len(body)}",
        ]
        if not keep:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if not head:
            writer.write(body)
        await writer.drain()

    async def _start_chunked(self, writer: asyncio.StreamWriter) -> None:
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            f"Date: {formatdate(usegmt=True)}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(head.encode("latin-1"))

    @staticmethod
    async def _chunk(writer: asyncio.StreamWriter, obj: Any) -> None:
        data = _dumps(obj) + b"\n"
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()

    # ------------------------------------------------------------------ internals: requests

    async def _dispatch(self, request: _Request, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> bool:
        """Answer one request; returns whether the connection may carry another."""
        body: Any = None
        if request.body:
            with contextlib.suppress(ValueError):
                body = json.loads(request.body)
        record = RecordedRequest(request.method, request.path, dict(request.headers),
                                 request.body, body, time.monotonic())
        with self._lock:
            self._requests.append(record)
        faults = self._faults_for(request.path)
        started = time.perf_counter()

        if "hang" in faults:
            record.outcome = "hang"
            await self._hang(reader)
            return False

        allowed = _ROUTES.get(request.path)
        if allowed is None:
            record.status, record.outcome = 404, "error"
            await self._send(writer, 404, b"404 page not found",
                             content_type="text/plain", keep=request.keep_alive)
            return True
        if request.method not in allowed:
            record.status, record.outcome = 405, "error"
            await self._send(writer, 405, b"405 method not allowed",
                             content_type="text/plain", keep=request.keep_alive)
            return True

        if "slow_first_token" in faults:
            await asyncio.sleep(float(faults["slow_first_token"].value))

        try:
            payload = self._parse_body(request.body) if request.method == "POST" else {}
            return await self._route(request, record, payload, faults, writer, started)
        except _HttpError as exc:
            record.status, record.outcome = exc.status, "error"
            await self._send(writer, exc.status, _dumps({"error": exc.message}),
                             keep=request.keep_alive)
            return True
        except (ConnectionError, asyncio.IncompleteReadError):
            record.outcome = "client_gone"
            return False

    async def _hang(self, reader: asyncio.StreamReader) -> None:
        assert self._stopping is not None
        gone = asyncio.ensure_future(reader.read(65536))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                done, _ = await asyncio.wait({gone, stop}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done or (gone in done and not gone.result()):
                    return
                gone = asyncio.ensure_future(reader.read(65536))  # more bytes: keep ignoring
        finally:
            gone.cancel()
            stop.cancel()

    @staticmethod
    def _parse_body(raw: bytes) -> dict[str, Any]:
        if not raw.strip():
            raise _HttpError(400, "missing request body")
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError as exc:
            if exc.pos >= len(exc.doc):
                raise _HttpError(400, "unexpected EOF") from None
            raise _HttpError(400, f"invalid character '{exc.doc[exc.pos]}' looking for "
                                  "beginning of value") from None
        if not isinstance(payload, dict):
            raise _HttpError(400, "json: cannot unmarshal into Go value of type api.Request")
        return payload

    def _lookup(self, name: Any, faults: Mapping[str, Fault], *, missing: str) -> ModelSpec:
        if not isinstance(name, str) or not name.strip():
            raise _HttpError(400, "model is required")
        spec = None if "unknown_model" in faults else self.models.get(normalize_model_name(name))
        if spec is None:
            raise _HttpError(404, missing.format(name=name))
        return spec

    async def _route(self, request: _Request, record: RecordedRequest, payload: dict[str, Any],
                     faults: dict[str, Fault], writer: asyncio.StreamWriter,
                     started: float) -> bool:
        path, keep = request.path, request.keep_alive
        head = request.method == "HEAD"

        def ok(obj: Any) -> Any:
            record.status, record.outcome = 200, "ok"
            return self._send(writer, 200, _dumps(obj), keep=keep, head=head)

        for name, status in (("error_500", 500), ("busy", 503)):
            if name in faults and path not in MODEL_PATHS:
                raise _HttpError(status, str(faults[name].value))

        if path == "/":
            record.status, record.outcome = 200, "ok"
            await self._send(writer, 200, b"Ollama is running",
                             content_type="text/plain; charset=utf-8", keep=keep, head=head)
        elif path == "/api/version":
            await ok({"version": self.version})
        elif path == "/api/tags":
            models = [] if "unknown_model" in faults else list(self.models.values())
            await ok({"models": [self._tag_entry(s, i) for i, s in enumerate(models)]})
        elif path == "/api/ps":
            await ok({"models": self._ps_entries(faults)})
        elif path == "/api/show":
            name = payload.get("model") or payload.get("name")
            spec = self._lookup(name, faults, missing="model '{name}' not found")
            self._server_fault(faults)
            await ok(self._show(spec))
        elif path == "/api/embed":
            await ok(self._embed(payload, faults, started))
        elif path == "/api/embeddings":
            await ok(self._embeddings(payload, faults))
        else:
            return await self._generate(path, record, payload, faults, writer, keep, started)
        return True

    @staticmethod
    def _server_fault(faults: Mapping[str, Fault]) -> None:
        if "error_500" in faults:
            raise _HttpError(500, str(faults["error_500"].value))
        if "busy" in faults:
            raise _HttpError(503, str(faults["busy"].value))

    # ------------------------------------------------------------------ model endpoints

    @staticmethod
    def _details(spec: ModelSpec) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": spec.format,
            "family": spec.family,
            "families": [spec.family],
            "parameter_size": spec.parameter_size,
            "quantization_level": spec.quantization_level,
        }

    def _tag_entry(self, spec: ModelSpec, index: int) -> dict[str, Any]:
        # most recently modified first, as the real list is sorted
        modified = datetime(2025, 9, 1, 12, 0, tzinfo=UTC).timestamp() - index * 3600
        stamp = datetime.fromtimestamp(modified, tz=UTC)
        return {
            "name": spec.key,
            "model": spec.key,
            "modified_at": f"{stamp:%Y-%m-%dT%H:%M:%S}.123456789Z",
            "size": spec.size,
            "digest": spec.digest,
            "details": self._details(spec),
        }

    def _ps_entries(self, faults: Mapping[str, Fault]) -> list[dict[str, Any]]:
        if "unknown_model" in faults:
            return []
        now = time.time()
        with self._lock:
            loaded = [(k, t) for k, t in self._loaded.items() if t > now]
        out = []
        for key, expires in sorted(loaded, key=lambda kt: -kt[1]):
            spec = self.models.get(key)
            if spec is None:
                continue
            stamp = datetime.fromtimestamp(expires, tz=UTC)
            out.append({
                "name": spec.key, "model": spec.key, "size": spec.size, "digest": spec.digest,
                "details": self._details(spec),
                "expires_at": stamp.isoformat().replace("+00:00", "Z"),
                "size_vram": spec.size, "context_length": DEFAULT_NUM_CTX,
            })
        return out

    def _touch(self, spec: ModelSpec, keep_alive: Any) -> None:
        seconds = 300.0
        if isinstance(keep_alive, (int, float)):
            seconds = float(keep_alive)
        elif isinstance(keep_alive, str):
            m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", keep_alive)
            if m:
                unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m[2] or "s"]
                seconds = float(m[1]) * unit
        forever = 10 * 365 * 86400.0  # a negative keep_alive keeps the model loaded
        with self._lock:
            self._loaded[spec.key] = time.time() + (forever if seconds < 0 else seconds)

    def _show(self, spec: ModelSpec) -> dict[str, Any]:
        arch = spec.family
        generative = "completion" in spec.capabilities
        template = (_CHATML_TEMPLATE if arch.startswith("qwen") else _LLAMA3_TEMPLATE) \
            if generative else "{{ .Prompt }}"
        parameters = (
            'stop                           "<|start_header_id|>"\n'
            'stop                           "<|end_header_id|>"\n'
            'stop                           "<|eot_id|>"'
            if generative else f"num_ctx                        {spec.context_length}"
        )
        return {
            "license": "Fake model for tests; no weights.",
            "modelfile": (
                '# Modelfile generated by "ollama show"\n'
                "# To build a new Modelfile based on this, replace FROM with:\n"
                f"# FROM {spec.key}\n\nFROM /fake/blobs/sha256-{spec.digest}\n"
                f'TEMPLATE """{template}"""\n'
            ),
            "parameters": parameters,
            "template": template,
            "details": self._details(spec),
            "model_info": {
                "general.architecture": arch,
                "general.file_type": 15 if spec.quantization_level.startswith("Q4") else 1,
                "general.parameter_count": _parameter_count(spec.parameter_size),
                "general.quantization_version": 2,
                f"{arch}.context_length": spec.context_length,
                f"{arch}.embedding_length": spec.embedding_length,
                f"{arch}.block_count": 28,
                f"{arch}.attention.head_count": 24,
                "tokenizer.ggml.model": "gpt2" if generative else "bert",
            },
            "tensors": [],
            "capabilities": list(spec.capabilities),
            "modified_at": "2025-09-01T12:00:00.123456789Z",
        }

    def _embed(self, payload: dict[str, Any], faults: Mapping[str, Fault],
               started: float) -> dict[str, Any]:
        model = payload.get("model")
        raw_input = payload.get("input")
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list) and all(isinstance(x, str) for x in raw_input):
            inputs = list(raw_input)
        elif raw_input is None:
            inputs = []
        else:
            raise _HttpError(400, "invalid input type")
        spec = self._lookup(model, faults, missing='model "{name}" not found, try pulling it first')
        self._server_fault(faults)
        self._touch(spec, payload.get("keep_alive"))
        loaded = time.perf_counter()
        if not inputs:
            return {"model": model, "embeddings": []}
        options = payload.get("options") or {}
        num_ctx = options.get("num_ctx") if isinstance(options, dict) else None
        ctx = min(int(num_ctx or spec.context_length), spec.context_length)
        truncate = payload.get("truncate") is not False
        dimensions = payload.get("dimensions")
        vectors, total = [], 0
        for text in inputs:
            tokens = _TOKEN.findall(text)
            if len(tokens) > ctx:
                if not truncate:
                    raise _HttpError(400, "the input length exceeds the context length")
                text = " ".join(tokens[:ctx])
                tokens = tokens[:ctx]
            total += len(tokens) + 2  # the model's BOS/EOS
            vectors.append(embed_text(text, spec.embedding_length,
                                      dimensions if isinstance(dimensions, int) else None))
        now = time.perf_counter()
        return {
            "model": model,
            "embeddings": vectors,
            "total_duration": int((now - started) * 1e9),
            "load_duration": int((loaded - started) * 1e9),
            "prompt_eval_count": total,
        }

    def _embeddings(self, payload: dict[str, Any], faults: Mapping[str, Fault]) -> dict[str, Any]:
        spec = self._lookup(payload.get("model"), faults,
                            missing='model "{name}" not found, try pulling it first')
        self._server_fault(faults)
        self._touch(spec, payload.get("keep_alive"))
        prompt = payload.get("prompt") or ""
        if not prompt:
            return {"embedding": []}
        return {"embedding": _bag_of_words(prompt, spec.embedding_length)}

    # ------------------------------------------------------------------ chat and generate

    def _answer_text(self, record: RecordedRequest, sources: Mapping[int, str],
                     question: str) -> str:
        with self._lock:
            scripted = self._script.popleft() if self._script else None
        if scripted is not None:
            return expand_script(scripted, sources)
        if self.responder is not None:
            return self.responder(record)
        return cited_answer(sources, question)

    async def _generate(self, path: str, record: RecordedRequest, payload: dict[str, Any],
                        faults: dict[str, Fault], writer: asyncio.StreamWriter, keep: bool,
                        started: float) -> bool:
        chat = path == "/api/chat"
        model = payload.get("model")
        spec = self._lookup(model, faults, missing="model '{name}' not found")
        stream = payload.get("stream") is not False
        messages = payload.get("messages") or []
        if chat and not isinstance(messages, list):
            raise _HttpError(400, "json: cannot unmarshal messages into Go struct field "
                                  "ChatRequest.messages of type []api.Message")
        prompt = payload.get("prompt") or ""
        keep_alive = payload.get("keep_alive")
        empty = not messages if chat else not prompt
        done_base = {"model": model, "created_at": _now_rfc3339()}
        if empty and keep_alive in (0, "0", "0s", "0m"):
            with self._lock:
                self._loaded.pop(spec.key, None)
            msg = ({"message": {"role": "assistant", "content": ""}} if chat
                   else {"response": ""})
            record.status, record.outcome = 200, "ok"
            await self._send(writer, 200, _dumps({**done_base, **msg, "done": True,
                                                  "done_reason": "unload"}), keep=keep)
            return True

        think = payload.get("think")
        thinking_model = "thinking" in spec.capabilities
        if think not in (None, False) and not thinking_model:
            raise _HttpError(400, f'"{model}" does not support thinking')
        if "completion" not in spec.capabilities:
            raise _HttpError(400, f'"{model}" does not support {"chat" if chat else "generate"}')
        if chat and payload.get("tools") and "tools" not in spec.capabilities:
            raise _HttpError(400, f"registry.ollama.ai/library/{spec.key} does not support tools")
        self._server_fault(faults)
        self._touch(spec, keep_alive)

        if empty:
            msg = ({"message": {"role": "assistant", "content": ""}} if chat
                   else {"response": ""})
            record.status, record.outcome = 200, "ok"
            await self._send(writer, 200, _dumps({**done_base, **msg, "done": True,
                                                  "done_reason": "load"}), keep=keep)
            return True

        if chat:
            texts = [m.get("content") for m in messages
                     if isinstance(m, dict) and m.get("role") in ("system", "user")
                     and isinstance(m.get("content"), str)]
            users = [m.get("content") or "" for m in messages
                     if isinstance(m, dict) and m.get("role") == "user"]
            last_user = users[-1] if users and isinstance(users[-1], str) else ""
        else:
            texts = [payload.get("system") or "", prompt]
            last_user = prompt
        context = "\n".join(texts)
        sources: dict[int, str] = {}
        for text in texts:  # a later turn's sources replace an earlier turn's with the same number
            sources.update(find_sources(text))
        sources = dict(sorted(sources.items()))
        question = question_of(last_user, find_sources(last_user))
        answer = self._answer_text(record, sources, question)
        fmt = payload.get("format")
        if fmt == "json" or isinstance(fmt, dict):
            answer = json.dumps({"answer": answer, "sources": list(sources)[:MAX_CITED_SOURCES]})

        options = payload.get("options") if isinstance(payload.get("options"), dict) else {}
        num_ctx = int(options.get("num_ctx") or DEFAULT_NUM_CTX)
        prompt_tokens = estimate_tokens(context) + 5 * max(1, len(messages))
        record.prompt_tokens = prompt_tokens
        thinks = thinking_model and think is not False
        num_predict = options.get("num_predict")
        content = split_pieces(answer)
        done_reason = "stop"
        if isinstance(num_predict, int) and 0 < num_predict < len(content):
            content, done_reason = content[:num_predict], "length"
        gen = _Generation(
            thinking=split_pieces("Let me look at the sources before answering.") if thinks
            else [],
            content=content,
            prompt_tokens=prompt_tokens,
            prompt_eval_count=min(prompt_tokens, num_ctx),
            started=started,
            loaded=time.perf_counter(),
        )
        if not chat:
            gen.extra_final["context"] = [_token_id(w) for w in answer.split()][:64]
        gen.extra_final["done_reason"] = done_reason

        if not stream:
            if "cut_mid_stream" in faults:
                record.outcome = "cut"
                return False  # the connection drops before any response
            if "error_mid_stream" in faults:
                raise _HttpError(500, "an error was encountered while running the model: "
                                      "unexpected EOF")
            await self._send(writer, 200, _dumps(self._final(chat, model, gen, whole=True)),
                             keep=keep)
            record.status, record.outcome = 200, "ok"
            return True
        return await self._stream(chat, model, gen, record, faults, writer)

    def _final(self, chat: bool, model: Any, gen: _Generation, *, whole: bool) -> dict[str, Any]:
        now = time.perf_counter()
        thinking = "".join(gen.thinking) if whole else ""
        content = "".join(gen.content) if whole else ""
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if thinking:
                message["thinking"] = thinking
            body: dict[str, Any] = {"model": model, "created_at": _now_rfc3339(),
                                    "message": message}
        else:
            body = {"model": model, "created_at": _now_rfc3339(), "response": content}
            if thinking:
                body["thinking"] = thinking
        eval_count = len(gen.thinking) + len(gen.content)
        prompt_eval = max(1, gen.prompt_eval_count // 1000) * 1_000_000
        body.update({
            "done": True,
            "done_reason": gen.extra_final.get("done_reason", "stop"),
            "total_duration": int((now - gen.started) * 1e9),
            "load_duration": int((gen.loaded - gen.started) * 1e9),
            "prompt_eval_count": gen.prompt_eval_count,
            "prompt_eval_duration": prompt_eval,
            "eval_count": eval_count,
            "eval_duration": max(int((now - gen.loaded) * 1e9) - prompt_eval, eval_count * 1000),
        })
        if "context" in gen.extra_final:
            body["context"] = gen.extra_final["context"]
        return body

    async def _stream(self, chat: bool, model: Any, gen: _Generation, record: RecordedRequest,
                      faults: Mapping[str, Fault], writer: asyncio.StreamWriter) -> bool:
        cut = int(faults["cut_mid_stream"].value) if "cut_mid_stream" in faults else None
        err_at = int(faults["error_mid_stream"].value) if "error_mid_stream" in faults else None
        every = float(faults["slow_every_token"].value) if "slow_every_token" in faults else 0.0
        pieces = [("thinking", p) for p in gen.thinking] + [("content", p) for p in gen.content]
        self._active_streams += 1
        self._peak_streams = max(self._peak_streams, self._active_streams)
        record.status = 200
        try:
            await self._start_chunked(writer)
            for i, (kind, piece) in enumerate(pieces):
                if cut is not None and i >= cut:
                    await writer.drain()
                    record.outcome = "cut"
                    return False  # closing now leaves the chunked body unterminated
                if err_at is not None and i >= err_at:
                    await self._chunk(writer, {"error": "an error was encountered while running "
                                                        "the model: unexpected EOF"})
                    writer.write(b"0\r\n\r\n")
                    await writer.drain()
                    record.outcome = "error"
                    return True
                if i and every:
                    await asyncio.sleep(every)
                base: dict[str, Any] = {"model": model, "created_at": _now_rfc3339()}
                if chat:
                    message: dict[str, Any] = {"role": "assistant", "content": ""}
                    message[kind] = piece
                    base["message"] = message
                else:
                    base["response"] = piece if kind == "content" else ""
                    if kind == "thinking":
                        base["thinking"] = piece
                base["done"] = False
                await self._chunk(writer, base)
            if cut is not None and cut <= len(pieces):
                record.outcome = "cut"
                return False
            await self._chunk(writer, self._final(chat, model, gen, whole=False))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            record.outcome = "ok"
            return True
        except (ConnectionError, OSError):
            record.outcome = "client_gone"
            return False
        finally:
            self._active_streams -= 1


def _token_id(word: str) -> int:
    digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") % 128_000


def _parameter_count(size: str) -> int:
    m = re.fullmatch(r"([\d.]+)([KMB])", size)
    if not m:
        return 0
    return int(float(m[1]) * {"K": 1e3, "M": 1e6, "B": 1e9}[m[2]])


# --------------------------------------------------------------------------- command line


def _parse_fault(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    if not value:
        return name, None
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.ollama",
                                     description="Run the fake Ollama server on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help=f"installed model (repeatable; default {', '.join(DEFAULT_MODELS)})")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                        help=f"switch a fault on: {', '.join(sorted(FAULTS))}")
    parser.add_argument("--token-delay", type=float, default=0.0,
                        help="seconds between streamed chunks (slow_every_token on every stream)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fake = FakeOllama(args.models or DEFAULT_MODELS, port=args.port)
    fake.start()
    if args.token_delay:
        fake.fault("slow_every_token", args.token_delay)
    for spec in args.fault:
        name, value = _parse_fault(spec)
        fake.fault(name, value)
    print(f"fake Ollama {fake.version} listening on {fake.host} "
          f"(models: {', '.join(fake.models)})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

