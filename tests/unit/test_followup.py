"""Follow-ups only when they are follow-ups: the decision on a labelled set of conversations, its
edge cases, and the chat's sources in a real vault (a new topic after a MuPDF question finds the
Cython document; "what about its license?" and "and on which page?" still use the turn before)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragdesk.core.chat import ChatService, ChatSettings
from ragdesk.core.followup import CHAIN_MAX, content_words, decide, search_query
from ragdesk.core.retrieval import Retriever
from ragdesk.core.store.sqlite.vault import Vault
from tests.conftest import SHARED
from tests.fakes.documents import put_documents
from tests.fakes.embedder import HashEmbedder
from tests.fakes.ollama import FakeOllama

CONVERSATIONS = Path(__file__).parent / "data" / "conversations.jsonl"
DOCQA = SHARED / "data" / "docqa" / "questions.jsonl"


def _conversations() -> list[dict]:
    with open(CONVERSATIONS, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.parametrize("conv", _conversations(), ids=lambda c: c["id"])
def test_every_labelled_conversation_is_decided_right(conv: dict) -> None:
    *earlier, last = conv["turns"]
    query, decision = search_query(last, earlier)
    assert decision.depends is conv["follows"], decision.reason
    if conv["follows"]:
        assert query != last and query.endswith(last), "a follow-up carries the turn before"
    else:
        assert query == last, "a new topic searches alone"


def test_the_set_has_both_kinds_and_names_real_files() -> None:
    convs = _conversations()
    assert 30 <= len(convs) <= 60
    assert sum(c["follows"] for c in convs) >= 15 and sum(not c["follows"] for c in convs) >= 15
    assert any(len(c["turns"]) == 3 for c in convs)
    corpus = SHARED / "corpus"
    if corpus.is_dir():
        missing = {c["file"] for c in convs} - {p.name for p in corpus.iterdir()}
        assert not missing


@pytest.mark.skipif(not DOCQA.exists(), reason="../shared/data/docqa is not beside the checkout")
@pytest.mark.parametrize("previous", ["How do I render a page with MuPDF?", "Was ist das?",
                                      "What is it?"])
def test_real_questions_stand_alone_after_any_turn(previous: str) -> None:
    """The 60 hand-written docqa questions each name their own subject, in three languages."""
    with open(DOCQA, encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for line in f if line.strip()]
    depending = [q for q in questions if decide(q, previous).depends]
    assert depending == []


@pytest.mark.parametrize(("question", "reason_part"), [
    ("Why?", "no word"),
    ("Which page?", "no word"),
    ("And?", "continues"),
    ("Also, who maintains MuPDF?", "continues"),
    ("same for the Cython guide?", "continues"),
    ("Does it support EPUB 3?", "'it'"),
    ("Who wrote them?", "'them'"),
    ("What does that mean?", "'that'"),
    ("Which device does that?", "that"),
    ("Is the same true for Cython?", "the same"),
    ("What should I use instead?", "instead"),
    ("What is on page 3?", "no word"),
    ("Show the next section", "page or section"),
    ("Wer hat es geschrieben?", "'es'"),
    ("Was bedeutet das?", "'das'"),
    ("Können Sie mir das erklären?", "'das'"),
    ("Und die Lizenz?", "continues"),
    ("Was ist mit Cython?", "continues"),
    ("Was steht auf Seite 4?", "no word"),
    ("In dieser Ausgabe, wer schrieb das Editorial?", "'dieser'"),
])
def test_follow_ups(question: str, reason_part: str) -> None:
    decision = decide(question, "How does MuPDF render a page to a pixmap?")
    assert decision.depends, decision.reason
    assert reason_part in decision.reason


@pytest.mark.parametrize("question", [
    "What is Cython used for?",
    "Is it possible to build MuPDF without JavaScript?",          # expletive "it"
    "Is there a way to cancel a render?",                          # expletive "there"
    "How do I know that the page was rendered?",                   # "that" joins a clause
    "Which function that MuPDF exports renders a page?",           # relative "that"
    "Why does Artifex ask contributors to hand over their copyright?",  # "their" has Artifex
    "What does page 12 of the Cython guide say about directives?",  # a page, with its own subject
    "Gibt es eine Grippepandemie-Warnung im Spektrum-Heft?",      # "gibt es"
    "Was können Sie über das Heft sagen?",                         # polite Sie, article das
    "How long does it take to index a 300-page PDF?",              # "does it take"
])
def test_new_topics(question: str) -> None:
    decision = decide(question, "How does MuPDF render a page to a pixmap?")
    assert not decision.depends, decision.reason


def test_a_first_question_and_bad_input_search_as_typed() -> None:
    assert search_query("and page 3?", []) == ("and page 3?", decide("and page 3?", None))
    assert not decide("Why?", None).depends and not decide("Why?", "   ").depends
    # Punctuation alone, stray spaces, a huge paste: an answer, never an exception.
    query, decision = search_query("  ?!  ", ["What is Cython?"])
    assert decision.depends and "Cython" in query
    long = "MuPDF " * 5000
    assert search_query(long, ["What is Cython?"])[0] == " ".join(long.split())


def test_the_folded_query_keeps_the_subject_and_drops_what_the_question_has() -> None:
    query, _ = search_query("what about its license?", ["What is Cython used for?"])
    assert query == "Cython used what about its license?"
    query, _ = search_query("And the Cython license?", ["Is Cython fast?"])
    assert query.count("Cython") == 1


def test_what_about_a_new_name_asks_the_same_of_it() -> None:
    query, decision = search_query("What about Cython?", ["How is MuPDF licensed?"])
    assert decision.depends and "MuPDF" not in query and "licensed" in query
    # German capitalises every noun, so there a capital does not mark the subject to replace.
    query, _ = search_query("Was ist mit dem Editorial?", ["Wer schrieb das Heft im Januar?"])
    assert "Heft" in query


def test_a_follow_up_of_a_follow_up_keeps_the_first_subject() -> None:
    turns = ["What is Cython used for?", "Who edited its reference guide?"]
    query, decision = search_query("and on which page?", turns)
    assert decision.depends and "Cython" in query and "edited" in query
    # ... and a new topic in the middle cuts the chain.
    query, _ = search_query("and on which page?", [*turns, "What is kappa in the Bézier ebook?"])
    assert "Cython" not in query and "kappa" in query


def test_a_long_chain_looks_back_a_bounded_number_of_turns() -> None:
    turns = ["What is Cython used for?"] + ["and then?"] * (CHAIN_MAX + 3)
    query, decision = search_query("and then?", turns)
    assert decision.depends and "Cython" not in query
    query, _ = search_query("and then?", turns[: CHAIN_MAX])  # the first question still in reach
    assert "Cython" in query


def test_content_words_keep_versions_and_identifiers_whole() -> None:
    assert content_words("What changed in MuPDF v1.10 for fz_try and pixmaps on page 3?") == [
        "changed", "MuPDF", "v1.10", "fz_try", "pixmaps"]


# --- through the chat service, in a real vault ------------------------------------------------

DOCS = {
    "/docs/mupdf.pdf": [
        (1, "MuPDF renders a PDF page to a pixmap with fz_new_pixmap_from_page. MuPDF uses a "
            "display list so a MuPDF page can be rendered again at another zoom."),
        (2, "MuPDF pixmap rendering: the MuPDF draw device renders each page into the pixmap; "
            "MuPDF can render pages on several threads."),
        (3, "MuPDF is released under the GNU AGPL license; Artifex also sells commercial "
            "licenses of MuPDF."),
    ],
    "/docs/cython.pdf": [
        (1, "Cython is used for writing C extensions for Python: it compiles Python code with "
            "optional static types to C, so Cython modules run fast."),
        (2, "The Cython compiler is released under the Apache license, version 2.0."),
    ],
    "/docs/bezier.epub": [
        (1, "The constant kappa approximates a quarter circle with one cubic Bezier curve."),
    ],
}


@pytest.fixture
def library(vault: Vault) -> Vault:
    put_documents(vault, DOCS, HashEmbedder(512))
    return vault


def _chat(store: Vault, host: str) -> ChatService:
    return ChatService(store, Retriever(store, HashEmbedder(512)),
                       ChatSettings(host=host, model="llama3.2:3b", k=3))


def _ask(chat: ChatService, question: str, conversation_id: int | None = None):  # type: ignore[no-untyped-def]
    return list(chat.ask(question, conversation_id=conversation_id))[-1]


def test_a_new_topic_in_a_conversation_finds_its_own_document(
        library: Vault, fake_ollama: FakeOllama) -> None:
    chat = _chat(library, fake_ollama.host)
    first = _ask(chat, "How does MuPDF render a page to a pixmap?")
    assert first.sources[0].hit.path == "/docs/mupdf.pdf"
    second = _ask(chat, "What is Cython used for?", first.conversation_id)
    assert second.conversation_id == first.conversation_id
    assert second.sources[0].hit.path == "/docs/cython.pdf"
    # The same as in a conversation of its own.
    alone = _ask(chat, "What is Cython used for?")
    assert [s.hit.chunk_id for s in second.sources] == [s.hit.chunk_id for s in alone.sources]


def test_follow_ups_still_use_the_turn_before(library: Vault, fake_ollama: FakeOllama) -> None:
    chat = _chat(library, fake_ollama.host)
    first = _ask(chat, "What is Cython used for?")
    license_ = _ask(chat, "what about its license?", first.conversation_id)
    found = [(s.hit.path, s.hit.page) for s in license_.sources]
    # its = Cython's: Cython first, its license page among the sources; MuPDF's AGPL not first.
    assert found[0][0] == "/docs/cython.pdf" and ("/docs/cython.pdf", 2) in found, found
    page = _ask(chat, "and on which page?", first.conversation_id)
    assert page.sources[0].hit.path == "/docs/cython.pdf"


def test_a_page_number_in_a_new_topic_does_not_pull_the_cited_document(
        library: Vault, fake_ollama: FakeOllama) -> None:
    chat = _chat(library, fake_ollama.host)
    first = _ask(chat, "How does MuPDF render a page to a pixmap?")
    assert "/docs/cython.pdf" not in {c["path"] for c in first.citations}
    second = _ask(chat, "What does the Cython guide say on page 2?", first.conversation_id)
    assert second.sources[0].hit.path == "/docs/cython.pdf"
