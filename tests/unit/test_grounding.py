"""The grounding check (issue 22): sentences, citations, facts, verdicts, and the check of a real
answer streamed from the fake Ollama through ChatService, stored with the message."""

from __future__ import annotations

import pytest

from ragdesk.core.chat import ChatService, ChatSettings
from ragdesk.core.grounding import (
    NOT_SUPPORTED,
    SUPPORTED,
    UNCITED,
    WEAK,
    Grounding,
    GroundingChecker,
    Passage,
    facts_of,
    is_claim,
    normalise_number,
    numbers_in,
    split_sentences,
)
from ragdesk.core.retrieval import Retriever
from ragdesk.core.store.sqlite.vault import Vault
from tests.fakes.documents import put_documents
from tests.fakes.embedder import HashEmbedder
from tests.fakes.ollama import FakeOllama

BUDGET = Passage(1, "The annual budget for the lighthouse project is 4,200,000 euros. "
                    "It was approved by Harriet Vance in March 2024. Inflation adds 10 per cent.",
                 "Lighthouse budget", 1)
WHALES = Passage(2, "Humpback whales migrate thousands of kilometres each year. They sing complex songs.",
                 "Whales", 1)


def verdicts(answer: str, *passages: Passage) -> list[tuple[str, str]]:
    g = GroundingChecker(None).check(answer, list(passages))
    return [(s.verdict, s.text) for s in g.sentences]


def test_sentences_keep_their_citations_and_positions() -> None:
    answer = ("The budget is 4.2 million euros [1]. It was approved in March. [1][2]\n"
              "- Whales sing, e.g. humpbacks do [2].\n\n```\ncode. Not [3] a sentence.\n```\nDone!")
    got = split_sentences(answer)
    assert [s.citations for s in got] == [(1,), (1, 2), (2,), ()]
    assert got[1].text == "It was approved in March. [1][2]"  # citations after the full stop
    assert got[2].text.startswith("- Whales sing, e.g. humpbacks")  # "e.g." ends nothing
    assert all(answer[s.start:s.end] == s.text for s in got)
    assert got[0].claim == "The budget is 4.2 million euros ."
    # A sentence may start with a lower-case name after a citation or a CJK full stop.
    got = split_sentences("It is 1.1.4 [1]. pandas needs it [2]. 余额为192,000.00万元。 "
                          "pdf_graft_object copies.")
    assert [s.text for s in got] == ["It is 1.1.4 [1].", "pandas needs it [2].", "余额为192,000.00万元。",
                                     "pdf_graft_object copies."]


def test_lead_ins_and_refusals_are_not_claims() -> None:
    texts = ["Here is what the sources say:", "The sources do not say who built it.", "Yes.",
             "## Budget"]
    for text in texts:
        assert not is_claim(split_sentences(text)[0]), text
    assert is_claim(split_sentences("The lighthouse costs money.")[0])


def test_numbers_are_compared_normalised() -> None:
    assert normalise_number("1,000") == normalise_number("1000") == "1000"
    assert normalise_number("10 %") == normalise_number("10 percent") == normalise_number("10%")
    assert normalise_number("192,000.00") == "192000" and normalise_number("1.10") == "1.10"
    assert {"4200000", "2024", "10%", "10"} <= numbers_in(BUDGET.text)
    assert "4" in numbers_in("four locks")  # number words count in passages


def test_facts_a_reader_would_check() -> None:
    facts = facts_of('Harriet Vance approved "the lighthouse plan" in 2024 with fz_try and MuPDF.')
    assert "2024" in facts.numbers
    assert {"Vance", "fz_try", "MuPDF"} <= set(facts.names)
    assert facts.quoted == ("the lighthouse plan",)
    assert "Disabling" not in facts_of("Disabling JavaScript saves 300 KB.").names


def test_verdicts_without_an_embedder() -> None:
    got = verdicts(
        "The lighthouse budget is 4,200,000 euros [1]. "  # supported (same number, other form)
        "The lighthouse budget is 5,200,000 euros [1]. "  # changed number
        "It was approved by Harriet Vance in March 2024 [1]. "
        "It was approved by Harriet Stone in March 2024 [1]. "  # swapped name
        "Inflation adds 10% to the budget [1]. "  # 10 per cent = 10%
        "Humpback whales migrate thousands of kilometres each year [1]. "  # the other passage's
        "The lighthouse budget is 4,200,000 euros. "  # no citation
        "The lighthouse budget is 4,200,000 euros [7].",  # a source that does not exist
        BUDGET, WHALES)
    assert [v for v, _ in got] == [SUPPORTED, NOT_SUPPORTED, SUPPORTED, NOT_SUPPORTED, SUPPORTED,
                                   NOT_SUPPORTED, UNCITED, NOT_SUPPORTED]


def test_a_flagged_sentence_says_why_and_offers_the_closest_passage() -> None:
    g = GroundingChecker(None).check(
        "Humpback whales migrate thousands of kilometres each year [1]. "
        "The budget is 5,200,000 euros [1].", [BUDGET, WHALES])
    other, number = g.sentences
    assert other.verdict == NOT_SUPPORTED and other.closest is not None and other.closest.n == 2
    assert "Humpback whales migrate" in other.closest.text
    assert number.missing == ("5200000",) and "5200000 does not appear in [1]" in number.reason
    assert g.summary() == "0 of 2 sentences supported by their sources"
    again = Grounding.from_json(g.to_json())
    assert again == g


def test_meaning_decides_what_words_cannot() -> None:
    """A paraphrase that shares few words is checked by meaning (here a fake embedder that maps
    both sentences to the same vector, so the test needs no model)."""

    class Same(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            import numpy as np
            out = np.zeros((len(texts), 8), dtype=np.float32)
            for i, t in enumerate(texts):
                out[i, 0 if ("funding" in t or "budget" in t) else 1] = 1.0
            return out

    checker = GroundingChecker(Same())
    g = checker.check("The lighthouse project's yearly funding was granted in spring [1]. "
                      "Marine mammals travel vast distances [1].", [BUDGET])
    assert [s.verdict for s in g.sentences] == [SUPPORTED, NOT_SUPPORTED]
    assert g.semantic
    assert GroundingChecker(None).check("The lighthouse project's yearly funding was granted in spring [1].",
                                        [BUDGET]).sentences[0].verdict in (WEAK, NOT_SUPPORTED)
    # A sentence that shares hardly a word with its passage is not supported, without a model run.
    g = checker.check("Its yearly cash allocation was granted in spring [1].", [BUDGET])
    assert g.sentences[0].verdict == NOT_SUPPORTED and "hardly shares a word" in g.sentences[0].reason


def test_feed_prepares_completed_sentences_only() -> None:
    seen: list[str] = []

    class Counting(HashEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            seen.extend(texts)
            return super().embed(texts)

    emb = Counting()
    checker = GroundingChecker(emb)
    partial = "The lighthouse project's yearly funding was granted in spring [1]. The whales"
    assert checker.feed(partial, [BUDGET]) > 0
    assert any("yearly funding" in t for t in seen) and not any("whales" in t for t in seen)
    before = len(seen)
    checker.check("The lighthouse project's yearly funding was granted in spring [1].", [BUDGET])
    assert len(seen) == before  # everything it needed was embedded while streaming


DOCS = {
    "/docs/budget.pdf": [(1, "The annual budget for the lighthouse project is 4.2 million euros. "
                             "It was approved in March.")],
    "/docs/whales.txt": [(1, "Humpback whales migrate thousands of kilometres each year.")],
}


@pytest.fixture
def filled(vault: Vault) -> Vault:
    put_documents(vault, DOCS)
    return vault


def test_streamed_answer_is_checked_and_stored(filled: Vault, fake_ollama: FakeOllama) -> None:
    """A scripted answer streams through the official client; the done event and the stored
    message carry each sentence's verdict."""
    fake_ollama.script("{source:1} [1]. The budget was 9.9 million euros [1]. "
                       "Lighthouses are painted red and white.")
    chat = ChatService(filled, Retriever(filled, HashEmbedder()),
                       ChatSettings(host=fake_ollama.host, model="llama3.2:3b"),
                       grounder=GroundingChecker(None))
    events = list(chat.ask("What is the lighthouse budget?"))
    done = events[-1]
    assert sum(e.kind == "token" for e in events) > 5  # it did stream
    grounding = done.grounding
    assert grounding is not None
    assert [s["verdict"] for s in grounding["sentences"]] == [SUPPORTED, NOT_SUPPORTED, UNCITED]
    assert grounding["sentences"][1]["missing"] == ["9.9"]
    assert grounding["summary"] == "1 of 3 sentences supported by their sources"
    stored = filled.messages(done.conversation_id)[-1]
    assert stored.meta["grounding"] == grounding


def test_an_extractive_answer_is_not_checked(filled: Vault) -> None:
    chat = ChatService(filled, Retriever(filled, HashEmbedder()),
                       ChatSettings(host=FakeOllama.unused_host(), model="llama3.2:3b",
                                    connect_timeout=0.5))
    done = list(chat.ask("lighthouse budget"))[-1]
    assert done.mode == "extractive" and done.grounding is None
