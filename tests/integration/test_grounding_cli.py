"""`ragdesk ask` shows each sentence held against its sources (issue 22): the JSON carries every
sentence's verdict, the text output says how many its sources support and which they do not.
The CLI runs as a child process against the fake Ollama, which streams a scripted answer."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PASSPHRASE, run_cli
from tests.fakes.ollama import FakeOllama

TEXT = ("The annual budget for the lighthouse project is 4.2 million euros. "
        "It was approved by the harbour council in March.\n")


def test_ask_json_carries_each_sentences_verdict(locked_vault: Path, tmp_path: Path,
                                                 fake_ollama: FakeOllama) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "budget.txt").write_text(TEXT, encoding="utf-8")
    env = {"RAGDESK_PASSPHRASE": PASSPHRASE, "OLLAMA_HOST": fake_ollama.host}
    assert run_cli("index", str(docs), "--workers", "0", env=env).returncode == 0

    fake_ollama.script("{source:1} [1]. The budget is 9.5 million euros [1]. "
                       "Lighthouses guide ships at night.")
    r = run_cli("ask", "--json", "--model", "llama3.2:3b", "What is the lighthouse budget?", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    sentences = out["grounding"]["sentences"]
    assert [(s["verdict"], s["citations"]) for s in sentences] == [
        ("supported", [1]), ("not supported", [1]), ("uncited", [])]
    assert sentences[1]["text"] == "The budget is 9.5 million euros [1]."
    assert "9.5" in sentences[1]["reason"]
    assert sentences[1]["closest"]["n"] == 1 and "4.2 million" in sentences[1]["closest"]["text"]
    assert out["grounding"]["summary"] == "1 of 3 sentences supported by their sources"

    fake_ollama.script("The budget is 9.5 million euros [1].")
    r = run_cli("ask", "--model", "llama3.2:3b", "What is the lighthouse budget?", env=env)
    assert r.returncode == 0, r.stderr
    assert "Check: 0 of 1 sentence supported by their sources" in r.stdout
    assert "not supported: 9.5 does not appear in [1]" in r.stdout
