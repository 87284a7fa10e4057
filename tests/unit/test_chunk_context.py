"""Chunks that know where they are (issue 16): the title and heading path they are searched with,
numbers and versions as people type them, the page a hit cites, vaults indexed before."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlcipher3

from ragdesk.core.chunking import chunk, embedding_text, search_context, with_context
from ragdesk.core.extract import Limits, extract, ocr_available
from ragdesk.core.extract.garbage import garbage_pages, is_garbage
from ragdesk.core.indexing import Indexer, IndexOptions
from ragdesk.core.indexing.pipeline import outdated_documents
from ragdesk.core.records import Block, Chunk, ChunkDraft, Extracted, Page
from ragdesk.core.retrieval import Retriever, answering_page
from ragdesk.core.scraps import scrap_kind
from ragdesk.core.store.keyword import number_words, query_terms
from ragdesk.core.store.sqlite import schema
from ragdesk.core.store.sqlite.vault import Vault
from tests.fakes.embedder import HashEmbedder


def test_versions_and_standard_numbers_match_however_they_are_typed() -> None:
    assert number_words("MuPDF v1.10 Changes") == number_words("What changed in version 1.10?") == ["1dot10"]
    assert number_words("release 2.0.1.") == ["2dot0dot1"]
    assert number_words("ISO 26262 part 6") == number_words("iso26262") == ["iso26262"]
    assert number_words("NIST SP 800-223") == number_words("SP800-223") == ["sp800223"]
    # ordinary numbers and words before them are not codes
    assert number_words("page 12 of 30, in 2021 we measured 10.5cm") == []
    assert query_terms("version 1.10")[-1] == "1dot10"


def test_a_chunk_is_searched_with_its_title_and_heading_path_but_shows_its_own_text() -> None:
    draft = ChunkDraft("Pixmaps now carry an alpha flag.", 3, 3, 0, 32, heading="Changes > Pixmap")
    context = search_context("MuPDF v1.10 Changes and their Implications", draft)
    assert context.split("\n") == ["MuPDF v1.10 Changes and their Implications › Changes › Pixmap", "1dot10"]
    assert embedding_text(draft.__class__(**{**draft.__dict__, "context": context})).startswith(
        "MuPDF v1.10 Changes and their Implications › Changes › Pixmap\nPixmaps now")
    # what the text already opens with is not repeated (a note whose first line is its title)
    note = ChunkDraft("Walrus feeding habits\n\nThe walrus eats clams.", 1, 1, 0, 40,
                      heading="Walrus feeding habits")
    assert search_context("Walrus feeding habits", note) == ""
    assert embedding_text(with_context([note], "Walrus feeding habits")[0]) == note.text


def test_a_chunk_over_a_page_break_knows_where_the_next_page_begins() -> None:
    p1 = "Title page line.\n\nThe report continues"
    p2 = "on the next page.\n\nClosing words about turbines."
    doc = Extracted("two pages", "pdf", [Page(1, p1), Page(2, p2)], [
        Block(1, 0, 16, "paragraph"), Block(1, 18, len(p1), "paragraph"),
        Block(2, 0, 17, "paragraph"), Block(2, 19, len(p2), "paragraph"),
    ])
    (only,) = chunk(doc)
    ((at, page),) = only.page_breaks
    assert page == 2 and only.text[at:].startswith("on the next page.")


def _chunk(text: str, breaks: tuple[tuple[int, int], ...]) -> Chunk:
    return Chunk(1, 1, 0, text, 4, 5, 100, 20, "", breaks)


def test_the_cited_page_is_the_one_holding_the_question_s_words() -> None:
    text = "Pumps are serviced yearly. The warranty covers the impeller and seals for five years."
    at = text.index("The warranty")
    c = _chunk(text, ((at, 5),))
    assert answering_page(c, query_terms("what does the warranty cover?")) == (5, 0, 20)
    assert answering_page(c, query_terms("how often are pumps serviced?")) == (4, 100, 0)
    assert answering_page(c, query_terms("nothing here matches")) == (4, 100, 0)
    one_page = Chunk(1, 1, 0, "x", 2, 2, 3, 9, "")
    assert answering_page(one_page, ["x"]) == (2, 3, 9)


def test_search_finds_a_document_by_the_version_in_its_title(vault: Vault, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "v110.md").write_text("# MuPDF v1.10 Changes\n\n## Pixmap\n\nPixmaps now carry an alpha"
                                    " flag.\n\n## Fonts\n\nFont handling was rewritten for speed.\n")
    (folder / "other.md").write_text("# The Device interface 9.1\n\nUsage 12.3.1: devices draw pages; "
                                     "this changed in 1.9 and again in 10.2.\n")
    for i in range(8):  # a library around them, so that rare words weigh as they do in one
        (folder / f"note-{i}.md").write_text(f"# Note {i}\n\nWhat changed in the kitchen, part 1 of {i + 2}.")
    list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))
    hits = Retriever(vault, HashEmbedder()).search("What changed in version 1.10?", k=3, mode="keyword")
    assert hits and Path(hits[0].path).name == "v110.md"
    # the font section is found by its document's title, which it does not contain itself
    fonts = Retriever(vault, HashEmbedder()).search("MuPDF 1.10 font handling", k=1, mode="keyword")
    assert "Font handling" in fonts[0].text and "MuPDF" not in fonts[0].text


def test_a_vault_indexed_before_reads_its_unchanged_files_again(tmp_path: Path, vault: Vault) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# Alpha report\n\n## Findings\n\nThe walrus eats clams.\n")
    list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))
    assert outdated_documents(vault) == []
    # as the upgrade's migration leaves a vault that had documents: all chunked by the old release
    vault.set_setting("chunks_outdated_before", vault.documents()[0].updated_at + 1e-6)
    assert [Path(d.path).name for d in outdated_documents(vault)] == ["a.md"]
    last = list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))[-1]
    assert last.indexed == 1 and last.unchanged == 0
    assert outdated_documents(vault) == []
    again = list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))[-1]
    assert again.unchanged == 1


def test_the_migration_keeps_old_chunks_searchable_and_marks_them_outdated() -> None:
    """The schema of the release before, with a document: after the chunk-context migration its
    chunk is still found by keyword (the index was rebuilt with the new column) and the documents
    stored before are marked outdated, so the next indexing run reads them again."""
    names = [n for n, _ in schema.MIGRATIONS]
    db = sqlcipher3.connect(":memory:", isolation_level=None)
    for _name, script in schema.MIGRATIONS[:names.index("m003_chunk_context")]:
        db.executescript(script)
    db.execute("INSERT INTO collections(id, name, created_at) VALUES (1, 'default', 0)")
    db.execute("INSERT INTO documents(id, collection_id, path, title, format, size, mtime, content_hash,"
               " status, pages, chunk_count, added_at, updated_at)"
               " VALUES (1, 1, '/n/a.md', 'a', 'md', 10, 1.0, 'h', 'indexed', 1, 1, 1.0, 1.0)")
    db.execute("INSERT INTO chunks(document_id, ordinal, text, page_start, page_end, char_start,"
               " char_end, heading) VALUES (1, 0, 'the walrus eats clams', 1, 1, 0, 21, '')")
    db.executescript(dict(schema.MIGRATIONS)["m003_chunk_context"])
    found = db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'walrus'").fetchall()
    assert found == [(1,)]
    (before,) = db.execute("SELECT value FROM settings WHERE key = 'chunks_outdated_before'").fetchone()
    assert float(before) > 1.0  # the document, updated at 1.0, is outdated
    db.execute("INSERT INTO chunks(document_id, ordinal, text, page_start, page_end, char_start,"
               " char_end, heading, context) VALUES (1, 1, 'seals', 1, 1, 0, 5, '', 'Arctic survey')")
    assert db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH 'arctic'").fetchall() == [(2,)]


def test_a_title_that_is_only_the_file_name_is_not_added() -> None:
    draft = ChunkDraft("The pump warranty runs for five years under ISO 9001.", 1, 1, 0, 50)
    assert search_context("warranty_terms_v2", draft, "/docs/warranty_terms_v2.pdf") == "\niso9001"
    assert embedding_text(with_context([draft], "warranty_terms_v2", "/docs/warranty_terms_v2.pdf")[0]) \
        == draft.text
    assert search_context("Pump Handbook", draft, "/docs/warranty_terms_v2.pdf").startswith("Pump Handbook\n")


def test_undecodable_text_is_never_a_hit_and_its_page_is_named(vault: Vault, tmp_path: Path) -> None:
    """A font without a usable ToUnicode map gives text like "Co�st�u�to� �ow": left out of the
    chunks (a single lost "°" is not), and the document says which page was unreadable."""
    assert is_garbage("Display List Co\ufffdst\ufffdu\ufffdto\ufffd \ufffdow \ufffde\ufffdui\ufffdes")
    assert is_garbage('!"\ufffd\ufffd*\ufffd$\ufffd*$:*(M\ufffd')
    assert not is_garbage("|**Boiling Points \ufffdC**|**min**|**max**|")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "mixed.txt").write_text("Pumps are serviced yearly by the crew.\n\n"
                                      "Co\ufffdst\ufffdu\ufffdto\ufffd \ufffdow \ufffde\ufffdui\ufffdes "
                                      "\ufffdedia\ufffdo\ufffd\n\nThe warranty covers five years.\n")
    last = list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))[-1]
    (outcome,) = last.outcomes
    assert outcome.status == "indexed"
    assert [(d.page, d.step) for d in outcome.degraded] == [(1, "text")]
    (doc,) = vault.documents()
    assert doc.error and "page 1: unreadable text" in doc.error  # shown in the library's detail
    texts = [c.text for d in vault.documents() for c in vault.document_chunks(d.id)]
    assert texts and not any("\ufffd" in t for t in texts)
    assert any("warranty" in t for t in texts) and any("serviced" in t for t in texts)


CONTENTS = ("Contents\n\n1 Compilation 3 1.1 Compiling from the command line … 3 1.2 Compiling with "
            "distutils … 3 1.3 Integrating multiple modules … 4 1.4 Compiling with pyximport … 5 "
            "2 Pump warranty … 9 2.1 What the pump warranty covers … 9")
REFERENCES = ("[1] Smith, J. et al. Pump wear in cold water. Proc. Hydraulics 2019, pp. 12-19. "
              "[2] Jones, K. Warranty terms for pumps. J. Fluid Eng. 2021, Vol. 3. "
              "[3] Lee, M. et al. Seal failures. In: Pumps Today 2018, pp. 4-9.")


def test_contents_indexes_and_reference_lists_are_recognised_by_their_shape() -> None:
    assert scrap_kind(CONTENTS) == "contents"
    assert scrap_kind(REFERENCES) == "references"
    assert scrap_kind("Abbey, 12, 45 Abbot, 3 Acre, 17-19 Altar, 5, 88 Apse, 41 Arch, 9, 10") == "index"
    # answers are not scraps: a table of figures, a paragraph that mentions years and a page
    assert scrap_kind("Bank | Credit | Used\n1 | 330,435.30 | 234,850.00\n2 | 98,000.00 | 0.00 | "
                      "3 | 93,900.00 | 43,500.00") is None
    assert scrap_kind("The pump warranty, introduced in 2019 and extended in 2021, covers seals "
                      "and the impeller for five years; see page 9.") is None


def test_a_table_of_contents_does_not_outrank_the_section_it_names(vault: Vault, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "contents.md").write_text(CONTENTS)
    (folder / "refs.md").write_text(REFERENCES)
    (folder / "warranty.md").write_text("# Terms\n\nFor five years from delivery, the warranty of each "
                                        "pump covers the impeller and the seals, when the unit was "
                                        "installed by an approved fitter and serviced once a year.")
    for i in range(8):
        (folder / f"note-{i}.md").write_text(f"# Note {i}\n\nThe kitchen was cleaned on day {i}.")
    list(Indexer(vault, HashEmbedder(), IndexOptions(workers=0)).run([folder]))
    keyword = vault.keyword_search("what does the pump warranty cover", 3)
    first = vault.chunks([keyword[0][0]])[0]
    assert scrap_kind(first.text), "by keyword score alone the contents (or references) come first"
    hits = Retriever(vault, HashEmbedder()).search("what does the pump warranty cover", k=5, mode="keyword")
    assert Path(hits[0].path).name == "warranty.md"
    assert {Path(h.path).name for h in hits} >= {"contents.md", "refs.md"}  # moved down, not out
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


V110 = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "v110-changes.pdf"


@pytest.mark.skipif(not V110.is_file(), reason="shared corpus not present")
def test_a_page_in_a_font_that_cannot_be_decoded_is_read_by_ocr_or_left_out_of_search() -> None:
    """v110-changes.pdf page 1: "Constructor now requires the page's mediabox" comes out of the
    text layer as "Co\ufffdst\ufffdu\ufffdto\ufffd \ufffdow \ufffde\ufffdui\ufffdes ...". With
    Tesseract the page is read by OCR; without, its undecodable lines stay out of the chunks and
    the page is named as degraded."""
    without = extract(V110, limits=Limits(ocr=False))
    assert garbage_pages([(p.number, p.text) for p in without.pages]) == [1]
    texts = [c.text for c in chunk(without)]
    assert not any(is_garbage(t) for t in texts)  # (a word or two lost in a good paragraph stays)
    assert not any("Co\ufffdst\ufffdu\ufffdto\ufffd" in t for t in texts)
    if ocr_available("eng"):
        read = extract(V110)
        assert "Constructor now requires the page" in read.pages[0].text
        assert garbage_pages([(p.number, p.text) for p in read.pages]) == []
        assert any("read by OCR" in w for w in read.warnings)
