"""The fake Ollama server, as the official `ollama` client sees it.

Everything goes through ``ollama.Client`` / ``ollama.AsyncClient`` (the production code path);
where the client has no method for a route (``/``, ``/api/version``, a malformed body) its own
httpx client is used, which is what RagDesk would do too.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import ollama
import pytest

from tests.fakes.ollama import FakeOllama, find_sources

CHAT = "llama3.2:3b"
EMBED = "nomic-embed-text"
SOURCES_SYSTEM = (
    "Answer only from the sources below and cite them by number.\n\n"
    "[1] report-2024.pdf, page 3: Revenue grew by five percent in 2024. Costs were flat.\n"
    "[2] minutes.docx: The board approved the new budget on 4 March. It takes effect in May.\n"
)
TAGGED_USER = (
    '<source id="1" title="a.pdf" page="2">Tesseract reads scanned pages. It needs language '
    'packs.</source>\n<source id="2" title="b.md">The vault is encrypted with SQLCipher.</source>'
    "\n\nQuestion: How are scanned pages read?"
)


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(sum(x * x for x in a) *
                                                                     sum(y * y for y in b))


def ask(question: str = "How did revenue change?") -> list[dict[str, str]]:
    return [{"role": "system", "content": SOURCES_SYSTEM}, {"role": "user", "content": question}]


@pytest.fixture
def client(fake_ollama: FakeOllama) -> ollama.Client:
    return ollama.Client(host=fake_ollama.host)


# ----------------------------------------------------------------------------- plain endpoints


def test_root_and_version(client: ollama.Client) -> None:
    assert client._client.get("/").text == "Ollama is running"
    assert client._client.head("/").status_code == 200
    version = client._client.get("/api/version")
    assert version.headers["content-type"].startswith("application/json")
    assert version.json()["version"].startswith("0.12.")


def test_list_shows_installed_models_with_details(client: ollama.Client) -> None:
    models = {m.model: m for m in client.list().models}
    assert set(models) == {"llama3.2:3b", "nomic-embed-text:latest"}
    llama = models["llama3.2:3b"]
    assert llama.size and llama.digest and len(llama.digest) == 64 and llama.modified_at
    assert llama.details is not None
    assert (llama.details.family, llama.details.parameter_size) == ("llama", "3.2B")
    assert llama.details.quantization_level == "Q4_K_M"


def test_show_reports_context_length_and_capabilities(client: ollama.Client) -> None:
    info = client.show(CHAT)
    assert info.modelinfo is not None
    assert info.modelinfo["llama.context_length"] == 131072
    assert info.capabilities == ["completion", "tools"]
    assert info.template and info.parameters
    embedder = client.show(EMBED)  # resolved to nomic-embed-text:latest
    assert embedder.modelinfo["nomic-bert.embedding_length"] == 768
    assert embedder.capabilities == ["embedding"]
    with pytest.raises(ollama.ResponseError) as err:
        client.show("missing-model")
    assert err.value.status_code == 404
    assert err.value.error == "model 'missing-model' not found"


def test_embed_shapes_determinism_and_similarity(client: ollama.Client) -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat today", "quarterly revenue report"]
    first = client.embed(model=EMBED, input=texts)
    again = client.embed(model=EMBED, input=texts)
    assert len(first.embeddings) == 3 and all(len(v) == 768 for v in first.embeddings)
    assert first.embeddings == again.embeddings
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5 for v in first.embeddings)
    a, b, c = first.embeddings
    assert cosine(a, b) > 0.4 > cosine(a, c)
    assert first.prompt_eval_count and first.total_duration is not None

    single = client.embed(model=EMBED, input="the cat sat on the mat")
    assert single.embeddings == [a]
    short = client.embed(model=EMBED, input="the cat", dimensions=64)
    assert len(short.embeddings[0]) == 64
    assert client.embed(model=EMBED, input=[]).embeddings == []

    legacy = client.embeddings(model=EMBED, prompt="the cat sat on the mat")
    assert len(legacy.embedding) == 768
    assert cosine(list(legacy.embedding), a) > 0.999  # same direction, not normalised


def test_embed_without_truncation_refuses_long_input(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as err:
        client.embed(model=EMBED, input="word " * 3000, truncate=False)
    assert err.value.status_code == 400
    assert len(client.embed(model=EMBED, input="word " * 3000).embeddings[0]) == 768


# ----------------------------------------------------------------------------- chat and generate


def test_chat_stream_cites_sources_word_by_word(fake_ollama: FakeOllama,
                                                client: ollama.Client) -> None:
    parts = list(client.chat(model=CHAT, messages=ask(), stream=True,
                             options={"num_ctx": 2048, "temperature": 0}))
    *pieces, final = parts
    assert len(pieces) > 5 and not any(p.done for p in pieces)
    assert final.done and final.done_reason == "stop" and final.message.content == ""
    assert final.eval_count == len(pieces)
    assert final.prompt_eval_count and final.total_duration and final.eval_duration
    answer = "".join(p.message.content or "" for p in pieces)
    assert answer == ("Based on the sources, report-2024.pdf, page 3: Revenue grew by five "
                      "percent in 2024 [1]. minutes.docx: The board approved the new budget on "
                      "4 March [2].")

    sent = fake_ollama.last_request("/api/chat")
    assert sent.options == {"num_ctx": 2048, "temperature": 0}
    assert sent.messages[-1]["content"] == "How did revenue change?"
    deadline = time.monotonic() + 5  # the fake records the outcome just after its last write
    while sent.outcome == "pending" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent.prompt_tokens and sent.outcome == "ok"


def test_chat_whole_answer_with_tagged_sources(client: ollama.Client) -> None:
    reply = client.chat(model=CHAT, messages=[{"role": "user", "content": TAGGED_USER}],
                        stream=False)
    assert reply.done and reply.done_reason == "stop"
    assert reply.message.role == "assistant"
    assert reply.message.content == ("Based on the sources, Tesseract reads scanned pages [1]. "
                                     "The vault is encrypted with SQLCipher [2].")


def test_chat_without_sources_echoes_the_question(client: ollama.Client) -> None:
    reply = client.chat(model=CHAT, messages=[{"role": "user", "content": "Who wrote it?"}])
    assert reply.message.content == (
        'I could not find an answer to "Who wrote it?" in the provided documents.')


def test_scripted_replies_come_first(fake_ollama: FakeOllama,
                                     client: ollama.Client) -> None:
    fake_ollama.script("Exactly this [2].", "Then this.")
    streamed = "".join(p.message.content or "" for p in
                       client.chat(model=CHAT, messages=ask(), stream=True))
    assert streamed == "Exactly this [2]."
    assert client.chat(model=CHAT, messages=ask()).message.content == "Then this."
    assert "[1]" in (client.chat(model=CHAT, messages=ask()).message.content or "")


def test_generate_stream_and_whole(client: ollama.Client) -> None:
    prompt = SOURCES_SYSTEM + "\nQuestion: When was the budget approved?"
    pieces = list(client.generate(model=CHAT, prompt=prompt, stream=True))
    text = "".join(p.response or "" for p in pieces)
    assert "[1]" in text and "[2]" in text and pieces[-1].done and pieces[-1].context
    whole = client.generate(model=CHAT, prompt=prompt)
    assert whole.response == text and whole.done_reason == "stop"


def test_thinking_and_capabilities() -> None:
    with FakeOllama(["qwen3:4b", "llama3.2:3b", "nomic-embed-text"]) as fake:
        client = ollama.Client(host=fake.host)
        reply = client.chat(model="qwen3:4b", messages=ask(), think=True)
        assert reply.message.thinking and "[1]" in (reply.message.content or "")
        for model, kwargs, message in [
            (CHAT, {"think": True}, '"llama3.2:3b" does not support thinking'),
            (EMBED, {}, '"nomic-embed-text" does not support chat'),
        ]:
            with pytest.raises(ollama.ResponseError) as err:
                client.chat(model=model, messages=ask(), **kwargs)
            assert (err.value.status_code, err.value.error) == (400, message)


def test_malformed_requests_get_400(client: ollama.Client) -> None:
    bad = client._client.post("/api/chat", content=b"{not json")
    assert bad.status_code == 400 and "invalid character" in bad.json()["error"]
    missing = client._client.post("/api/chat", json={"messages": []})
    assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})
    empty = client._client.post("/api/embed", content=b"")
    assert empty.json() == {"error": "missing request body"}
    assert client._client.get("/api/nothing").status_code == 404
    assert client._client.get("/api/chat").status_code == 405


# ----------------------------------------------------------------------------- fault modes


def test_refused_connection(fake_ollama: FakeOllama, client: ollama.Client,
                            ollama_refused_host: str) -> None:
    with pytest.raises(ConnectionError):
        ollama.Client(host=ollama_refused_host).list()

    assert client.list().models  # a pooled keep-alive connection exists now
    fake_ollama.fault("refused")
    with pytest.raises(ConnectionError):
        client.list()
    fake_ollama.clear("refused")
    assert client.list().models


def test_unknown_model_everywhere(fake_ollama: FakeOllama,
                                  client: ollama.Client) -> None:
    fake_ollama.fault("unknown_model")
    assert client.list().models == []
    with pytest.raises(ollama.ResponseError) as chat_err:
        client.chat(model=CHAT, messages=ask())
    with pytest.raises(ollama.ResponseError) as stream_err:
        next(iter(client.chat(model=CHAT, messages=ask(), stream=True)))
    with pytest.raises(ollama.ResponseError) as embed_err:
        client.embed(model=EMBED, input="x")
    assert chat_err.value.status_code == stream_err.value.status_code == 404
    assert embed_err.value.status_code == 404
    assert embed_err.value.error == 'model "nomic-embed-text" not found, try pulling it first'


def test_error_500_and_busy(fake_ollama: FakeOllama, client: ollama.Client) -> None:
    fake_ollama.fault("error_500", times=1)
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model=CHAT, messages=ask())
    assert err.value.status_code == 500 and "llama runner" in err.value.error
    assert client.chat(model=CHAT, messages=ask()).done  # only once: a retry succeeds

    fake_ollama.fault("busy", paths=["/api/embed"])
    with pytest.raises(ollama.ResponseError) as busy:
        client.embed(model=EMBED, input="x")
    assert busy.value.status_code == 503
    assert client.chat(model=CHAT, messages=ask()).done  # other paths are unaffected


def test_stream_cut_mid_answer(fake_ollama: FakeOllama,
                               client: ollama.Client) -> None:
    fake_ollama.fault("cut_mid_stream", 4)
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        for part in client.chat(model=CHAT, messages=ask(), stream=True):
            received.append(part.message.content or "")
    assert "".join(received) == "Based on the sources,"
    assert fake_ollama.last_request("/api/chat").outcome == "cut"


def test_error_line_mid_stream(fake_ollama: FakeOllama,
                               client: ollama.Client) -> None:
    fake_ollama.fault("error_mid_stream", 2)
    received: list[str] = []
    with pytest.raises(ollama.ResponseError) as err:
        for part in client.chat(model=CHAT, messages=ask(), stream=True):
            received.append(part.message.content or "")
    assert received == ["Based", " on"] and "unexpected EOF" in err.value.error


def test_slow_first_token_and_slow_tokens(fake_ollama: FakeOllama,
                                          client: ollama.Client) -> None:
    fake_ollama.fault("slow_first_token", 0.4)
    start = time.perf_counter()
    stream = iter(client.chat(model=CHAT, messages=ask(), stream=True))
    next(stream)
    first = time.perf_counter() - start
    list(stream)
    assert 0.4 <= first < 2.0

    fake_ollama.clear()
    fake_ollama.fault("slow_every_token", 0.02)
    start = time.perf_counter()
    parts = list(client.chat(model=CHAT, messages=ask(), stream=True))
    assert time.perf_counter() - start >= 0.02 * (len(parts) - 2)


def test_hang_ends_in_client_timeout(fake_ollama: FakeOllama) -> None:
    fake_ollama.fault("hang")
    impatient = ollama.Client(host=fake_ollama.host, timeout=0.3)
    start = time.perf_counter()
    with pytest.raises(httpx.TimeoutException):
        impatient.chat(model=CHAT, messages=ask())
    assert time.perf_counter() - start < 2
    assert fake_ollama.last_request("/api/chat").outcome == "hang"


def test_stop_releases_hanging_connections() -> None:
    fake = FakeOllama().start()
    fake.fault("hang")
    client = ollama.Client(host=fake.host, timeout=5)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.list()
        except BaseException as exc:  # recorded for the assert
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.2)
    start = time.perf_counter()
    fake.stop()
    worker.join(5)
    assert time.perf_counter() - start < 2 and not worker.is_alive()
    assert outcome and isinstance(outcome[0], httpx.RemoteProtocolError)


# ----------------------------------------------------------------------------- load and runner


def test_200_concurrent_streams(fake_ollama: FakeOllama) -> None:
    fake_ollama.fault("slow_every_token", 0.1)

    async def one(client: ollama.AsyncClient, i: int) -> str:
        text = ""
        async for part in await client.chat(model=CHAT, messages=ask(f"question {i}?"),
                                            stream=True):
            text += part.message.content or ""
        return text

    async def run() -> list[str]:
        client = ollama.AsyncClient(host=fake_ollama.host,
                                    limits=httpx.Limits(max_connections=None))
        try:
            return await asyncio.gather(*(one(client, i) for i in range(200)))
        finally:
            await client._client.aclose()

    answers = asyncio.run(run())
    assert len(answers) == 200 and all(a.endswith("[2].") for a in answers)
    assert fake_ollama.peak_streams == 200 and fake_ollama.active_streams == 0


def test_standalone_runner() -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.ollama", "--port", "0"],
                            cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        host = line.split(" listening on ")[1].split()[0]
        assert ollama.Client(host=host).list().models
    finally:
        proc.terminate()
        proc.wait(5)


def test_find_sources_formats() -> None:
    assert find_sources("intro\n[1] one. x\n  more\n\n[2] two.\nQuestion: q") == {
        1: "one. x more", 2: "two. Question: q"}
    assert find_sources('<doc id="3">three</doc><doc id=4>four</doc>') == {3: "three",
                                                                          4: "four"}
    assert find_sources("Source 5: five.\n[Source 6] six.") == {5: "five.", 6: "six."}
