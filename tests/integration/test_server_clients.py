"""Real clients against a real server (uvicorn, TLS, ephemeral loopback port): the official
`openai` and `ollama` packages, and the native SSE API through httpx. The model is the fake
Ollama, the embedder the hashed bag of words."""

from __future__ import annotations

import json
import time

import httpx
import ollama
import openai
import pytest

from tests.fakes.server import Running, sse_events

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def secret(server: Running) -> str:
    return server.token("clients")


def openai_client(server: Running, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "v1", api_key=secret, max_retries=0,
                         http_client=httpx.Client(verify=server.verify, timeout=30))


def ollama_client(server: Running, secret: str) -> ollama.Client:
    return ollama.Client(host=server.url.rstrip("/"), headers={"Authorization": f"Bearer {secret}"},
                         verify=server.verify, timeout=30)


def test_openai_models_and_completion(server: Running, secret: str) -> None:
    client = openai_client(server, secret)
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "ragdesk" and "llama3.2:3b" in ids

    completion = client.chat.completions.create(
        model="ragdesk", messages=[{"role": "user", "content": "What is the lighthouse budget?"}])
    content = completion.choices[0].message.content
    assert "4.2 million" in content and "[1]" in content
    assert "Sources:\n[1] budget.pdf, p. 1 — /docs/budget.pdf" in content
    citations = completion.model_extra["citations"]
    assert citations[0]["path"] == "/docs/budget.pdf" and citations[0]["snippet"]
    assert completion.choices[0].finish_reason == "stop"


def test_openai_streaming_with_history(server: Running, secret: str) -> None:
    client = openai_client(server, secret)
    stream = client.chat.completions.create(
        model="llama3.2:3b", stream=True,
        messages=[{"role": "system", "content": "ignored: grounding is the server's"},
                  {"role": "user", "content": "Tell me about the lighthouse."},
                  {"role": "assistant", "content": "It has a budget [1]."},
                  {"role": "user", "content": "What is the lighthouse budget?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 5, "the answer streams in pieces"
    assert "4.2 million" in text and "Sources:" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["n"] == 1
    # The earlier turns reached the model as the conversation's history.
    sent = server.fake.last_request("/api/chat").messages
    assert [m["role"] for m in sent][-3:] == ["user", "assistant", "user"]
    assert not any("ignored: grounding" in m["content"] for m in sent)


def test_openai_unknown_model_is_404(server: Running, secret: str) -> None:
    with pytest.raises(openai.NotFoundError):
        openai_client(server, secret).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "budget?"}])


def test_ollama_client_list_version_chat(server: Running, secret: str) -> None:
    client = ollama_client(server, secret)
    names = [m.model for m in client.list().models]
    assert "ragdesk:latest" in names and "llama3.2:3b" in names

    question = [{"role": "user", "content": "What is the lighthouse budget?"}]
    reply = client.chat(model="ragdesk", messages=question)
    assert "4.2 million" in reply.message.content and "Sources:" in reply.message.content
    assert reply.done and reply.done_reason == "stop"

    question = [{"role": "user", "content": "How many keepers work at the lighthouse?"}]
    parts = list(client.chat(model="llama3.2:3b", stream=True, messages=question))
    assert len(parts) > 5 and parts[-1].done and not any(p.done for p in parts[:-1])
    text = "".join(p.message.content for p in parts)
    assert "[" in text and "Sources:" in text

    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nope:1b", messages=[{"role": "user", "content": "budget?"}])
    assert err.value.status_code == 404
    version = client._client.get("/api/version").json()["version"]
    assert version.count(".") == 2


def test_native_ask_streams_sources_tokens_citations_done(server: Running, secret: str) -> None:
    with server.client(secret) as c:
        with c.stream("POST", "/api/v1/ask", json={"question": "What is the lighthouse budget?"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = sse_events(r)
        kinds = [e for e, _ in events]
        assert kinds[0] == "sources" and kinds[-2:] == ["citations", "done"]
        assert kinds.count("token") > 5 and set(kinds[1:-2]) == {"token"}
        answer = "".join(json.loads(d)["text"] for e, d in events if e == "token")
        citations = json.loads(events[-2][1])
        done = json.loads(events[-1][1])
        assert "4.2 million" in answer and citations[0]["title"] == "budget.pdf"
        assert done["mode"] == "llm" and done["status"] == "complete"

        # A follow-up in the same conversation; another token cannot reach it.
        with c.stream("POST", "/api/v1/ask", json={"question": "and the staffing?",
                                                    "conversation_id": done["conversation_id"]}) as r:
            assert r.status_code == 200
            sse_events(r)
        sent = server.fake.last_request("/api/chat").messages
        assert any("lighthouse budget" in m["content"] for m in sent if m["role"] == "user")
    with server.client(server.token("other-reader")) as other:
        r = other.post("/api/v1/ask", json={"question": "more?", "conversation_id": done["conversation_id"]})
        assert r.status_code == 404


def test_search_and_collection_scope(server: Running, secret: str) -> None:
    with server.client(secret) as c:
        hits = c.post("/api/v1/search", json={"query": "contract terminated notice", "k": 3}).json()["hits"]
        assert hits[0]["path"] == "/legal/contract.txt" and hits[0]["collection"] == "legal"
        assert c.get("/api/v1/collections").json() == ["default", "legal"]
    scoped = server.token("only-default", collections=["default"])
    with server.client(scoped) as c:
        hits = c.post("/api/v1/search", json={"query": "contract terminated notice", "k": 5}).json()["hits"]
        assert hits and all(h["collection"] == "default" for h in hits)
        elsewhere = c.post("/api/v1/search", json={"query": "contract", "collections": ["legal"]})
        assert elsewhere.status_code == 403
        assert c.get("/api/v1/collections").json() == ["default"]
        assert {d["collection"] for d in c.get("/api/v1/documents").json()} == {"default"}
        completion = c.post("/v1/chat/completions", json={
            "messages": [{"role": "user", "content": "When may the contract be terminated?"}]}).json()
        assert all(x["path"] != "/legal/contract.txt" for x in completion["citations"])


def test_client_disconnect_cancels_the_chat(server: Running, secret: str) -> None:
    server.fake.fault("slow_every_token", 0.2)
    try:
        with (server.client(secret) as c,
              c.stream("POST", "/api/v1/ask", json={"question": "What is the lighthouse budget?"}) as r):
            for line in r.iter_lines():
                if line.startswith("event: token"):
                    break
        deadline = time.monotonic() + 5
        while server.fake.active_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.fake.active_streams == 0, "the stream to the model was closed"
        assert server.fake.last_request("/api/chat").outcome in ("client_gone", "cut")
        deadline = time.monotonic() + 5
        while server.handle.app.state.ctx.active_streams and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.handle.app.state.ctx.active_streams == 0, "the stream slot was released"
    finally:
        server.fake.clear()


def test_ollama_down_gives_extractive_answer(server: Running, secret: str) -> None:
    server.fake.fault("refused")
    try:
        with (server.client(secret) as c,
              c.stream("POST", "/api/v1/ask", json={"question": "What is the lighthouse budget?",
                                                    "model": "llama3.2:3b"}) as r):
            events = sse_events(r)
        done = json.loads(events[-1][1])
        assert done["mode"] == "extractive"
        notices = [json.loads(d)["text"] for e, d in events if e == "notice"]
        assert notices and "not reachable" in notices[0], notices
        assert json.loads(events[-2][1])[0]["path"] == "/docs/budget.pdf"
    finally:
        server.fake.clear()


def test_disconnect_keeps_the_partial_answer_as_stopped(server: Running, secret: str) -> None:
    server.fake.fault("slow_every_token", 0.2)
    ctx = server.handle.app.state.ctx
    try:
        with (server.client(secret) as c,
              c.stream("POST", "/api/v1/ask", json={"question": "How many keepers are employed?"}) as r):
            for line in r.iter_lines():
                if line.startswith("event: token"):
                    break
        deadline = time.monotonic() + 5
        while (ctx.active_streams or server.fake.active_streams) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.fake.active_streams == 0, "the stream to the model was closed"
        owner = server.handle.tokens.verify(secret).owner  # the token's conversations
        conversation = ctx.memory.conversations(owner)[0]
        question, answer = ctx.memory.messages(conversation.id, owner)[-2:]
        assert question.content == "How many keepers are employed?"
        assert answer.role == "assistant" and answer.status == "stopped" and answer.content
    finally:
        server.fake.clear()


def test_stream_cut_keeps_the_partial_answer_and_says_so(server: Running, secret: str) -> None:
    server.fake.fault("cut_mid_stream", 4)
    try:
        with (server.client(secret) as c,
              c.stream("POST", "/api/v1/ask", json={"question": "What is the lighthouse budget?"}) as r):
            events = sse_events(r)
        kinds = [e for e, _ in events]
        assert kinds[0] == "sources" and kinds[-3:] == ["notice", "citations", "done"]
        partial = "".join(json.loads(d)["text"] for e, d in events if e == "token")
        assert partial, "what came before the cut is kept"
        notice = json.loads(events[-3][1])["text"]
        assert notice.startswith("The answer was cut off") and "broke off" in notice, notice
        done = json.loads(events[-1][1])
        assert done["mode"] == "llm" and done["status"] == "failed"
        owner = server.handle.tokens.verify(secret).owner
        stored = server.handle.app.state.ctx.memory.messages(done["conversation_id"], owner)[-1]
        assert stored.content == partial and stored.status == "failed"
    finally:
        server.fake.clear()


def test_streams_need_no_thread_each(server: Running) -> None:
    """Answers stream on the event loop: six at once add no thread per answer."""
    import threading

    server.fake.fault("slow_every_token", 0.1)
    secrets = [server.token(f"many-{i}") for i in range(2)]
    results: list[str] = []

    def ask(secret: str) -> None:
        with (server.client(secret) as c,
              c.stream("POST", "/api/v1/ask", json={"question": "lighthouse budget"}) as r):
            events = sse_events(r)
        results.append(json.loads(events[-1][1])["status"])

    try:
        deadline = time.monotonic() + 5
        while server.fake.active_streams and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.fake.active_streams == 0
        askers = [threading.Thread(target=ask, args=(secrets[i % 2],)) for i in range(6)]
        for t in askers:
            t.start()
        deadline = time.monotonic() + 10
        while server.fake.active_streams < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.fake.active_streams == 6
        names = [t.name for t in threading.enumerate()]
        assert not [n for n in names if n.startswith(("ollama-stream", "ragdesk-chat"))]
        pool = server.handle.app.state.ctx.runner.pool
        assert len([n for n in names if n.startswith("ragdesk-ask")]) <= pool._max_workers
        for t in askers:
            t.join(30)
        assert results == ["complete"] * 6
    finally:
        server.fake.clear()
