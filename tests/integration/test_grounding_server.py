"""The LAN server carries each sentence's verdict (issue 22): `/api/v1/ask`'s done event, and an
extra `ragdesk.grounding` field on the OpenAI and Ollama shapes, which their official clients
still read. The fake Ollama streams scripted answers with supported and unsupported sentences."""

from __future__ import annotations

import json
import time

import httpx
import ollama
import openai
import pytest

from tests.fakes.server import Running, sse_events

pytestmark = pytest.mark.timeout(60)

SCRIPT = ("The annual budget for the lighthouse project is 4.2 million euros [1]. "
          "The budget was approved by Harriet Vance [1]. Lighthouses are painted red.")
EXPECTED = ["supported", "not supported", "uncited"]


@pytest.fixture(scope="module")
def secret(server: Running) -> str:
    return server.token("grounding")


def test_native_ask_done_carries_the_verdicts(server: Running, secret: str) -> None:
    server.fake.script(SCRIPT)
    with server.client(secret) as c, \
            c.stream("POST", "/api/v1/ask", json={"question": "What is the lighthouse budget?"}) as r:
        assert r.status_code == 200
        events = sse_events(r)
    kinds = [e for e, _ in events]
    assert kinds[-2:] == ["citations", "done"] and kinds.count("token") > 5
    grounding = json.loads(events[-1][1])["grounding"]
    sentences = grounding["sentences"]
    assert [s["verdict"] for s in sentences] == EXPECTED
    assert sentences[1] | {"closest": None} == sentences[1] | {
        "text": "The budget was approved by Harriet Vance [1].", "citations": [1],
        "closest": None}
    assert "Harriet" in sentences[1]["reason"] and sentences[1]["closest"]["n"] == 1
    assert grounding["summary"] == "1 of 3 sentences supported by their sources"


def test_openai_shape_keeps_its_format_with_an_extra_field(server: Running, secret: str) -> None:
    client = openai.OpenAI(base_url=server.url + "v1", api_key=secret, max_retries=0,
                           http_client=httpx.Client(verify=server.verify, timeout=30))
    server.fake.script(SCRIPT)
    completion = client.chat.completions.create(
        model="ragdesk", messages=[{"role": "user", "content": "What is the lighthouse budget?"}])
    assert completion.choices[0].message.content.startswith("The annual budget")
    got = completion.model_extra["ragdesk"]["grounding"]["sentences"]
    assert [s["verdict"] for s in got] == EXPECTED

    server.fake.script(SCRIPT)
    chunks = list(client.chat.completions.create(
        model="ragdesk", stream=True,
        messages=[{"role": "user", "content": "What is the lighthouse budget?"}]))
    assert chunks[-1].choices[0].finish_reason == "stop"
    got = chunks[-1].model_extra["ragdesk"]["grounding"]["sentences"]
    assert [s["verdict"] for s in got] == EXPECTED


def test_ollama_shape_keeps_its_format_with_an_extra_field(server: Running, secret: str) -> None:
    client = ollama.Client(host=server.url.rstrip("/"), headers={"Authorization": f"Bearer {secret}"},
                           verify=server.verify, timeout=30)
    server.fake.script(SCRIPT)
    parts = list(client.chat(model="ragdesk", stream=True,
                             messages=[{"role": "user", "content": "What is the lighthouse budget?"}]))
    assert parts[-1].done and "Harriet Vance" in "".join(p.message.content for p in parts)
    server.fake.script(SCRIPT)
    with server.client(secret) as c:
        question = [{"role": "user", "content": "What is the lighthouse budget?"}]
        r = c.post("/api/chat", json={"model": "ragdesk", "stream": False, "messages": question})
    assert r.status_code == 200
    got = r.json()["ragdesk"]["grounding"]["sentences"]
    assert [s["verdict"] for s in got] == EXPECTED


def test_an_answer_cut_by_the_client_is_checked_by_words(server: Running, secret: str) -> None:
    """A client that leaves mid-answer: what came is stored as stopped, checked by facts and words
    only (that check runs on the event loop, so it makes no model run)."""
    server.fake.fault("slow_every_token", 0.05)
    ctx = server.handle.app.state.ctx
    server.fake.script(SCRIPT)
    try:
        with (server.client(secret) as c,
              c.stream("POST", "/api/v1/ask", json={"question": "What is the lighthouse budget?"}) as r):
            words = 0
            for line in r.iter_lines():
                words += line.startswith("event: token")
                if words > 16:  # past the first sentence
                    break
        owner = server.handle.tokens.verify(secret).owner
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            answer = ctx.memory.messages(ctx.memory.conversations(owner)[0].id, owner)[-1]
            if answer.status == "stopped":
                break
            time.sleep(0.05)
        assert answer.status == "stopped"
        grounding = answer.meta["grounding"]
        assert grounding["semantic"] is False and grounding["sentences"][0]["verdict"] == "supported"
    finally:
        server.fake.clear()
