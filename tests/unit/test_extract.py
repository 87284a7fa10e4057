"""extract(): every file of the shared corpus gives its text or a reason; bad input gives a reason.

The corpus lives beside the repository (../shared/corpus); files made here are small and built in
tmp_path.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pymupdf
import pytest

from ragdesk.core.extract import (
    ExtractionError,
    Limits,
    UnsupportedFormat,
    detect_format,
    extract,
    ocr_available,
    supported,
)
from ragdesk.core.extract import mupdf as mupdf_module
from ragdesk.core.extract.title import MAX_TITLE, choose_title, file_title, meaningful_title
from ragdesk.core.records import Extracted

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
needs_ocr = pytest.mark.skipif(not ocr_available("eng"), reason="Tesseract (eng) not installed")

MB = 1024 * 1024

# What each corpus file must yield: words that must be in its text (and, optionally, its title
# and page count), or the error class and a fragment of the reason.
TEXT = "text"
EXPECTED: dict[str, tuple] = {
    "001003ED.pdf": (TEXT, ["Zukunft", "Observatorium"], "Schöne neue Welten", 1),
    "2201.00069.pdf": (
        TEXT,
        ["MeerKAT", "FRB"],
        "MeerKAT, e-MERLIN, Swift and H.E.S.S., observations of three localised FRBs",
        1,
    ),
    "Bezier.epub": (TEXT, ["Bézier", "kappa"], "Bézier Circles and other shapes", None),
    "bug1971.pdf": (ExtractionError, "no text found"),
    "chinese-tables.pdf": (TEXT, ["发行人历史信用评级情况", "工商银行"], None, 1),
    "circular-toc.pdf": (TEXT, ["Page1", "Page2"], "circular-toc", 2),
    "cython.pdf": (TEXT, ["Compiling with distutils"], "Cython Reference Guide", 11),
    "github_sample.pdf": (TEXT, ["NOTES TO FINANCIAL STATEMENTS", "AB Bond Fund"], "github_sample", 1),
    "has-bad-fonts.pdf": (TEXT, ["TORONTO", "佛山"], None, 1),
    "image-file1.pdf": ("ocr", ["Never", "look", "back"], None, 1),
    "mupdf_explored.pdf": (TEXT, ["What is MuPDF?", "fz_context"], "MuPDF Explored", 285),
    "small-table.pdf": (TEXT, ["Noble gases", "2755.9"], None, 1),
    "test-linebreaks.pdf": (TEXT, ["Header1", "Col33"], None, 1),
    "test_3493.epub": (TEXT, ["Rabbit-Hole", "Cheshire"], "Alice's Adventures in Wonderland", None),
    "test_3654.docx": (TEXT, ["TEST"], "test_3654", 1),
    "test_4496.hwpx": (TEXT, ["안녕하세요"], None, 1),
    "test_markdown_bad_unicode.md": (
        TEXT, ["Boiling Points °C", "Still open"], "test_markdown_bad_unicode", 1
    ),
    "test_open2.doc": (UnsupportedFormat, "legacy Word .doc is not supported"),
    "test_open2.docx": (TEXT, ["Some minimal content"], "test_open2", 1),
    "test_open2.fb2": (TEXT, ["Test Header h1", "Yet more copy"], "Sample FB2 book", 1),
    "test_open2.html": (TEXT, ["Spektrum der Wissenschaft", "MathWorld"], None, 1),
    "test_open2.mobi": (TEXT, ["A test paragraph.", "A Test Header h3"], "test_open2", 1),
    "test_open2.svg": (ExtractionError, "no text found"),
    "test_open2.xhtml": (TEXT, ["Some text"], None, 1),
    "test_open2.xps": (
        TEXT, ["BeautifulSoup4", "Optional dependencies"], "Optional dependencies", 1
    ),
    "text-find-ligatures.pdf": (TEXT, ["Does 'flag' have a ligature?"], None, 1),
    "type3font.pdf": (ExtractionError, "Type 3 fonts"),  # glyphs without characters, not a scan
    "v110-changes.pdf": (
        TEXT, ["Pixmap", "alpha"], "MuPDF v1.10 Changes and their Implications for PyMuPDF", 4
    ),
}

_cache: dict[str, Extracted | ExtractionError] = {}


def corpus_result(name: str) -> Extracted | ExtractionError:
    """Each corpus file is extracted once per test run."""
    if name not in _cache:
        try:
            _cache[name] = extract(CORPUS / name)
        except ExtractionError as exc:
            _cache[name] = exc
    return _cache[name]


def flat(doc: Extracted) -> str:
    """All text with whitespace collapsed (line breaks in PDFs fall anywhere)."""
    return " ".join(" ".join(p.text for p in doc.pages).split())


# --- the corpus -------------------------------------------------------------------------------


@needs_corpus
def test_every_corpus_file_has_an_expectation() -> None:
    names = sorted(p.name for p in CORPUS.iterdir() if p.is_file())
    assert names == sorted(EXPECTED), "a corpus file was added or removed: update EXPECTED"


@needs_corpus
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_gives_its_text_or_a_reason(name: str) -> None:
    expected = EXPECTED[name]
    result = corpus_result(name)
    if isinstance(expected[0], type):
        error_class, reason = expected
        assert isinstance(result, error_class), f"{name} should fail, got {result!r:.200}"
        assert reason in str(result)
        return
    kind, words, title, pages = expected
    if kind == "ocr" and not ocr_available("eng"):
        assert isinstance(result, ExtractionError)
        assert "install Tesseract" in str(result)
        return
    assert isinstance(result, Extracted), f"{name}: {result}"
    text = flat(result)
    for word in words:
        assert word in text, f"{word!r} missing from {name}"
    if title is not None:
        assert result.title == title
    if pages is not None:
        assert len(result.pages) == pages
    assert [p.number for p in result.pages] == list(range(1, len(result.pages) + 1))
    for block in result.blocks:  # offsets index into that page's text
        page_text = result.pages[block.page - 1].text
        assert 0 <= block.start < block.end <= len(page_text)
        assert page_text[block.start : block.end].strip()


@needs_corpus
def test_pdf_headings_come_from_the_outline_on_the_right_page() -> None:
    doc = corpus_result("mupdf_explored.pdf")
    assert isinstance(doc, Extracted)
    headings = {
        doc.pages[b.page - 1].text[b.start : b.end]: (b.page, b.level)
        for b in doc.blocks
        if b.kind == "heading"
    }
    assert headings["Introduction"] == (14, 1)
    assert headings["What is MuPDF?"] == (14, 2)


@needs_corpus
def test_pdf_headings_from_font_size_when_there_is_no_outline() -> None:
    doc = corpus_result("v110-changes.pdf")
    assert isinstance(doc, Extracted)
    headings = [doc.pages[b.page - 1].text[b.start : b.end] for b in doc.blocks if b.kind == "heading"]
    assert "Pixmap" in headings
    assert not any(h.startswith("The alpha channel") for h in headings)


@needs_corpus
def test_word_bullets_from_a_symbol_font_are_bullets() -> None:
    """v110-changes.pdf lists its changes with Word's Symbol-font bullet (U+F0B7, private use):
    shown as empty boxes in the Sources panel until they were read as bullets."""
    doc = corpus_result("v110-changes.pdf")
    assert isinstance(doc, Extracted)
    text = "\n".join(p.text for p in doc.pages)
    assert "\uf0b7" not in text and text.count("•") >= 10


@needs_corpus
def test_ruled_tables_are_one_block_of_rows_with_the_header_first() -> None:
    doc = corpus_result("chinese-tables.pdf")
    assert isinstance(doc, Extracted)
    tables = [doc.pages[0].text[b.start : b.end] for b in doc.blocks if b.kind == "table"]
    assert len(tables) == 2
    assert tables[1].splitlines()[0] == "序号 | 金融机构名称 | 授信总额 | 已使用情况 | 剩余额度"
    assert "2 | 徽商银行南京中山北路支行 | 330,435.30 | 256,735.30 | 73,700.00" in tables[1]
    # wrapped CJK cell text is joined without spurious spaces
    assert "中诚信国际信用评级有限责任公司" in tables[0]


@needs_corpus
def test_ligatures_are_expanded_so_both_spellings_are_found() -> None:
    doc = corpus_result("text-find-ligatures.pdf")
    assert isinstance(doc, Extracted)
    assert flat(doc).count("flag") == 2
    assert "\ufb02" not in flat(doc)


@needs_corpus
def test_latin1_markdown_is_decoded_with_a_warning() -> None:
    doc = corpus_result("test_markdown_bad_unicode.md")
    assert isinstance(doc, Extracted)
    assert "\ufffd" not in doc.pages[0].text
    assert any("not UTF-8" in w for w in doc.warnings)


@needs_corpus
def test_mupdf_chatter_does_not_reach_the_terminal(capfd: pytest.CaptureFixture[str]) -> None:
    doc = extract(CORPUS / "has-bad-fonts.pdf")  # MuPDF complains about its fonts
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert any("non-embedded font" in w for w in doc.warnings)


@needs_corpus
def test_caller_supplied_bytes_are_used_and_magic_beats_the_extension(tmp_path: Path) -> None:
    data = (CORPUS / "cython.pdf").read_bytes()
    doc = extract(tmp_path / "download.bin", data=data)  # the path need not exist
    assert doc.format == "pdf"
    assert "Compiling with distutils" in flat(doc)


# --- OCR --------------------------------------------------------------------------------------


def _image_only_pdf(path: Path, lines: list[str], text_page: str | None = None) -> Path:
    """A PDF whose first page is a picture of ``lines`` (no text layer)."""
    src = pymupdf.open()
    page = src.new_page()
    y = 120
    for line in lines:
        page.insert_text((60, y), line, fontsize=22)
        y += 40
    pix = page.get_pixmap(dpi=150)
    out = pymupdf.open()
    out.new_page().insert_image(out[0].rect, pixmap=pix)
    if text_page:
        out.new_page().insert_text((72, 72), text_page, fontsize=12)
    out.save(path)
    return path


@needs_ocr
def test_scanned_page_is_read_by_ocr(tmp_path: Path) -> None:
    pdf = _image_only_pdf(tmp_path / "scan.pdf", ["The quick brown fox", "jumps over the lazy dog"])
    assert pymupdf.open(pdf)[0].get_text().strip() == ""  # really no text layer
    doc = extract(pdf)
    text = flat(doc).lower()
    for word in ("quick", "brown", "fox", "jumps", "lazy", "dog"):
        assert word in text
    assert any("OCR" in w for w in doc.warnings)


def test_scan_without_tesseract_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _image_only_pdf(tmp_path / "scan.pdf", ["Invoice 4711"])
    monkeypatch.setattr(mupdf_module, "_tessdata_dir", lambda language: None)
    with pytest.raises(ExtractionError, match="no text layer — install Tesseract"):
        extract(pdf)


def test_scan_with_ocr_switched_off(tmp_path: Path) -> None:
    pdf = _image_only_pdf(tmp_path / "scan.pdf", ["Invoice 4711"])
    with pytest.raises(ExtractionError, match="no text layer"):
        extract(pdf, limits=Limits(ocr=False))


def test_partly_scanned_document_keeps_its_text_and_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdf = _image_only_pdf(tmp_path / "mixed.pdf", ["Scanned page"], text_page="Typed page text")
    monkeypatch.setattr(mupdf_module, "_tessdata_dir", lambda language: None)
    doc = extract(pdf)
    assert doc.pages[0].text == ""
    assert "Typed page text" in doc.pages[1].text
    assert any("1 page(s) without a text layer" in w for w in doc.warnings)


# --- bad input --------------------------------------------------------------------------------


def test_zero_byte_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    with pytest.raises(ExtractionError, match="zero-byte file"):
        extract(empty)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="file not found"):
        extract(tmp_path / "gone.txt")


@needs_corpus
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_pdf(keep: float) -> None:
    data = (CORPUS / "cython.pdf").read_bytes()
    with pytest.raises(ExtractionError, match="corrupt or truncated PDF"):
        extract(Path("cut.pdf"), data=data[: int(len(data) * keep)])


def test_pdf_header_then_garbage(tmp_path: Path) -> None:
    with pytest.raises(ExtractionError, match="corrupt"):
        extract(Path("x.pdf"), data=b"%PDF-1.7\n" + bytes(range(256)) * 20)


def test_html_error_page_saved_as_pdf() -> None:
    with pytest.raises(ExtractionError, match="not a PDF file"):
        extract(Path("report.pdf"), data=b"<html><body>404 Not Found</body></html>")


def test_password_protected_pdf() -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "secret plans")
    data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    with pytest.raises(ExtractionError, match=r"encrypted PDF \(password needed\)"):
        extract(Path("locked.pdf"), data=data)


def _zip_bomb(path: Path, gigabytes: int = 1) -> Path:
    """A zip whose one member inflates to ``gigabytes`` GB of zeros, written in a second or so.

    The deflate stream is built from one compressed megabyte repeated (a full flush resets the
    compressor, so every block after the first compresses to the same bytes); the zip headers
    are written by hand around it. The file is about 1 MB per GB.
    """
    zero = bytes(MB)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = comp.compress(zero) + comp.flush(zlib.Z_FULL_FLUSH)
    block = comp.compress(zero) + comp.flush(zlib.Z_FULL_FLUSH)
    count = gigabytes * 1024
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(zero, crc)
    name = b"word/document.xml"
    size = count * MB
    with path.open("wb") as fh:
        fh.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, 0, size, len(name), 0))
        fh.write(name)
        compressed = fh.write(first)
        for _ in range(count - 1):
            compressed += fh.write(block)
        compressed += fh.write(comp.flush())
        central = fh.tell()
        fh.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50, 20, 20, 0, 8, 0, 0, crc, compressed, size, len(name), 0, 0, 0, 0, 0, 0,
            )
        )
        fh.write(name)
        end = fh.tell()
        fh.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, end - central, central, 0))
        fh.seek(18)  # the local header's compressed size, now known
        fh.write(struct.pack("<I", compressed))
    return path


def test_zip_bomb_is_refused_before_decompressing(tmp_path: Path) -> None:
    bomb = _zip_bomb(tmp_path / "bomb.docx")
    assert bomb.stat().st_size < 2 * MB
    with pytest.raises(ExtractionError, match="zip bomb"):
        extract(bomb)


def test_huge_file_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as fh:
        fh.truncate(201 * MB)  # sparse: no disk space used

    def no_read(self: Path, *args: object, **kwargs: object) -> None:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(Path, "open", no_read)
    with pytest.raises(ExtractionError, match="larger than the 200 MB limit"):
        extract(huge)


def test_binary_garbage_named_txt(tmp_path: Path) -> None:
    garbage = tmp_path / "notes.txt"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(ExtractionError, match=r"not a text file \(binary content\)"):
        extract(garbage)


@needs_corpus
def test_legacy_doc_renamed_docx_is_still_recognised() -> None:
    data = (CORPUS / "test_open2.doc").read_bytes()
    with pytest.raises(UnsupportedFormat, match=r"legacy Word \.doc"):
        extract(Path("renamed.docx"), data=data)


def test_docx_that_is_not_a_zip() -> None:
    with pytest.raises(ExtractionError, match="not a valid Word"):
        extract(Path("x.docx"), data=b"this is plain text, not a document")


def test_unknown_and_known_unsupported_extensions() -> None:
    with pytest.raises(UnsupportedFormat, match=r"unsupported file type \.xyz"):
        extract(Path("a.xyz"), data=b"hello")
    with pytest.raises(UnsupportedFormat, match="image files are not indexed"):
        extract(Path("photo.jpg"), data=b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(UnsupportedFormat, match="unpack it first"):
        extract(Path("bundle.zip"), data=b"PK\x03\x04 whatever")


def test_supported_and_detect_format() -> None:
    assert supported(Path("Report.PDF"))
    assert supported(Path("src/main.rs"))
    assert supported(Path("Makefile"))
    assert not supported(Path("old.doc"))
    assert not supported(Path("photo.jpg"))
    assert detect_format(Path("x.bin"), b"%PDF-1.4\n...") == "pdf"
    assert detect_format(Path("notes.md"), b"# hi") == "markdown"
    with pytest.raises(UnsupportedFormat, match="legacy"):
        detect_format(Path("x.doc"), bytes.fromhex("d0cf11e0a1b11ae1") + bytes(100))


# --- text files -------------------------------------------------------------------------------


def test_invalid_utf8_is_replaced_with_a_warning() -> None:
    data = "Grüße aus Köln, schöne Straße. ".encode() * 5 + b"\xff\xfe broken " + "Überall".encode()
    doc = extract(Path("notes.txt"), data=data)
    text = doc.pages[0].text
    assert "Grüße aus Köln" in text and "Überall" in text  # not garbled as a legacy code page
    assert "\ufffd" in text
    assert any("invalid UTF-8" in w for w in doc.warnings)


@pytest.mark.parametrize(
    "encoding",
    ["latin-1", "cp1252", "utf-16", "utf-16-le", "utf-8-sig"],
)
def test_text_encodings_are_detected(encoding: str) -> None:
    sentence = "Le café est très bon à Paris, où l'été est chaud. Ça coûte cher, déjà.\n"
    doc = extract(Path("menu.txt"), data=(sentence * 4).encode(encoding))
    assert doc.pages[0].text == sentence * 4  # no BOM, no mojibake


def test_markdown_headings_become_heading_blocks() -> None:
    source = "# Guide\n\nIntro.\n\n## Install\n\n```\n# not a heading\n```\n\nSetup\n-----\n\nDone.\n"
    doc = extract(Path("guide.md"), data=source.encode())
    page = doc.pages[0].text
    headings = [(page[b.start : b.end], b.level) for b in doc.blocks if b.kind == "heading"]
    assert headings == [("Guide", 1), ("Install", 2), ("Setup", 2)]
    assert [b.kind for b in doc.blocks].count("code") == 1
    assert doc.title == "Guide"


def test_csv_rows_become_one_table_block() -> None:
    data = "name;city;age\nAnna;Köln;31\nBernd;Zürich;45\n".encode("cp1252")
    doc = extract(Path("people.csv"), data=data)
    assert doc.pages[0].text.splitlines() == [
        "name | city | age",
        "Anna | Köln | 31",
        "Bernd | Zürich | 45",
    ]
    assert [b.kind for b in doc.blocks] == ["table"]


def test_json_is_flattened_to_paths() -> None:
    data = b'{"title": "Report", "authors": [{"name": "Ann"}, {"name": "Bo"}], "meta": {"year": 2024}}'
    doc = extract(Path("report.json"), data=data)
    lines = doc.pages[0].text.splitlines()
    assert "authors[1].name: Bo" in lines
    assert "meta.year: 2024" in lines
    assert len(doc.blocks) == 3  # one per top-level key


def test_json_lines_keep_bad_lines_as_text() -> None:
    doc = extract(Path("log.jsonl"), data=b'{"event": "login"}\nnot json at all\n')
    assert "[0].event: login" in doc.pages[0].text
    assert "not json at all" in doc.pages[0].text
    assert any("not valid JSON" in w for w in doc.warnings)


EMAIL = b"""From: Alice Example <alice@example.org>
To: Bob <bob@example.org>
Subject: =?utf-8?q?Quarterly_r=C3=A9sum=C3=A9?=
Date: Mon, 3 Mar 2025 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="OUT"

--OUT
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

The budget for the lighthouse project is approved.
--ALT
Content-Type: text/html; charset=utf-8

<html><body><p>HTML VERSION of the budget</p></body></html>
--ALT--
--OUT
Content-Type: application/pdf; name="budget.pdf"
Content-Disposition: attachment; filename="budget.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--OUT--
"""


def test_email_prefers_the_plain_part_and_lists_attachments() -> None:
    doc = extract(Path("mail.eml"), data=EMAIL)
    text = doc.pages[0].text
    assert doc.title == "Quarterly résumé"
    assert "From: Alice Example <alice@example.org>" in text
    assert "The budget for the lighthouse project is approved." in text
    assert "HTML VERSION" not in text
    assert "Attachments: budget.pdf" in text
    assert "JVBERi0" not in text  # the attachment's content is not indexed as text


def test_html_only_email_is_stripped_of_markup_and_scripts() -> None:
    data = b"""From: a@example.org
Subject: Crossing
Content-Type: text/html; charset=utf-8

<html><head><style>p{color:red}</style><script>alert('x')</script></head>
<body><h1>Greetings</h1><p>Zebra &amp; giraffe crossing</p></body></html>
"""
    text = extract(Path("h.eml"), data=data).pages[0].text
    assert "Zebra & giraffe crossing" in text and "Greetings" in text
    assert "<p>" not in text and "alert" not in text and "color:red" not in text


def _minimal_pptx(words: str) -> bytes:
    import io
    import zipfile

    ns_p = "http://schemas.openxmlformats.org/presentationml/2006/main"
    ns_r = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    ct = "application/vnd.openxmlformats-officedocument.presentationml"
    files = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats'
            '-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/ppt/presentation.xml" ContentType="{ct}.presentation.main+xml"/>'
            f'<Override PartName="/ppt/slides/slide1.xml" ContentType="{ct}.slide+xml"/></Types>'
        ),
        "_rels/.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId1" Type="{rel}/officeDocument" '
            'Target="ppt/presentation.xml"/></Relationships>'
        ),
        "ppt/presentation.xml": (
            f'<?xml version="1.0"?><p:presentation xmlns:p="{ns_p}" xmlns:r="{ns_r}">'
            '<p:sldIdLst><p:sldId id="256" r:id="rId2"/></p:sldIdLst>'
            '<p:sldSz cx="9144000" cy="6858000"/></p:presentation>'
        ),
        "ppt/_rels/presentation.xml.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            f'2006/relationships"><Relationship Id="rId2" Type="{rel}/slide" '
            'Target="slides/slide1.xml"/></Relationships>'
        ),
        "ppt/slides/slide1.xml": (
            '<?xml version="1.0"?><p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/'
            f'main" xmlns:p="{ns_p}"><p:cSld><p:spTree><p:sp><p:txBody><a:p><a:r><a:t>{words}'
            "</a:t></a:r></a:p></p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
        ),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_pptx_is_read_through_pymupdf() -> None:
    doc = extract(Path("deck.pptx"), data=_minimal_pptx("Quarterly giraffe census"))
    assert doc.format == "pptx"
    assert "Quarterly giraffe census" in flat(doc)


# --- titles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("Annual Report 2023", "Annual Report 2023"),
        ("  Annual\n Report\t2023 ", "Annual Report 2023"),  # whitespace normalised
        ("", ""),
        ("   ", ""),
        ("Title", ""),
        ("Document Title", ""),
        ("untitled", ""),
        ("Untitled-1", ""),
        ("none", ""),
        ("NULL", ""),
        ("Unknown", ""),
        ("Document", ""),
        ("Document1", ""),
        ("New Document", ""),
        ("default", ""),
        ("n/a", ""),
        ("Slide 1", ""),
        ("PowerPoint Presentation", ""),
        ("Microsoft Word - Quarterly budget review.doc", "Quarterly budget review"),
        ("Microsoft Word - Document1", ""),
        ("Microsoft Word - report_v2.docx", ""),  # the rest is a file name
        ("Microsoft PowerPoint - Launch plan.pptx", "Launch plan"),
        ("Excel - Tips and Tricks", "Excel - Tips and Tricks"),  # a real title about Excel
        ("report.pdf", ""),  # the file's own name
        ("RUBRIK_Editorial_01-06.indd", ""),  # another file name
        ("Final_Report_v2", ""),  # a file name without its extension
        ("C:\\Users\\anna\\Documents\\plan.docx", ""),
        ("/home/anna/plan", ""),
        ("https://example.org/paper", ""),
        ("!\"\ufffd\ufffd*\ufffd$\ufffd*$:*(M\ufffd", ""),  # mis-decoded font
        ("Caf\ufffd menu", ""),
        ("Budget\x07 2023", ""),  # control character
        ("\ue001\ue002\ue003 Report", ""),  # private-use glyphs
        ("CafÃ© menu", "Café menu"),  # UTF-8 read as cp1252 is repaired
        ("12/03/2019", ""),
        ("#### ---- ####", ""),
        ("Ab", ""),  # fewer than three letters
        ("ISO 26262 functional safety", "ISO 26262 functional safety"),
        ("第七章企业资信状况", "第七章企业资信状况"),
        ("Title: A Study of Tides", "Title: A Study of Tides"),  # a placeholder only when alone
        ('"Hamlet"', "Hamlet"),  # quotes around the whole title go
        ('Harbour plan "B"', 'Harbour plan "B"'),  # a quote that ends it stays
        ("Contingency plan B", "Contingency plan B"),
        ("- Harbour lamp -", "Harbour lamp"),
    ],
)
def test_meaningful_metadata_title(metadata: str, expected: str) -> None:
    assert meaningful_title(metadata, "report.pdf") == expected


def test_an_absurdly_long_title_is_cut_at_a_word() -> None:
    long = " ".join(["Observations"] * 40)
    title = meaningful_title(long)
    assert len(title) <= MAX_TITLE and title.endswith("Observations…")


@pytest.mark.parametrize(
    ("metadata", "headings", "expected"),
    [
        ("A Study of Tides", ["Introduction"], "A Study of Tides"),  # metadata first
        ("none", ["A Study of Tides", "Methods"], "A Study of Tides"),  # then the first heading
        ("", ["", "A Study of Tides"], "A Study of Tides"),  # no cover title: next candidate
        ("Title", ["A Study of Tides\n5"], "A Study of Tides"),  # page number set with it
        ("", ["This is some text set large on the page.", "Tides"], "Tides"),  # a sentence
        ("", ["Contents", "Tides and Currents"], "tide_report"),  # a section: file name
        ("", ["Title", "A Table"], "tide_report"),  # a placeholder heading: file name
        ("", ["test_book_epub", "Test Header h1"], "tide_report"),
        ("", [], "tide_report"),  # nothing: the file name without extension, as written
        ("Document1", ["1 Introduction"], "tide_report"),
    ],
)
def test_choose_title(metadata: str, headings: list[str], expected: str) -> None:
    assert choose_title(metadata, headings, "tide_report.pdf") == expected


def test_file_name_title_keeps_the_name_as_written() -> None:
    assert file_title("annual-report_2023.pdf") == "annual-report_2023"
    assert file_title("notes") == "notes"


def test_every_reader_chooses_titles_the_same_way() -> None:
    md = b"# Title\n\nSome text.\n\n## Usage\n\nMore text.\n"
    assert extract(Path("install_notes.md"), data=md).title == "install_notes"
    front = b"---\ntitle: \"Harbour Committee Minutes\"\n---\n\n# Minutes\n\nText.\n"
    assert extract(Path("m.md"), data=front).title == "Harbour Committee Minutes"
    mail = b"From: a@example.org\nSubject: untitled\n\nThe lamp is fixed.\n"
    assert extract(Path("lamp.eml"), data=mail).title == "lamp"
    page = b"<html><head><title>Lighthouse &amp; Harbour</title></head><body><p>Hi</p></body></html>"
    assert extract(Path("page.html"), data=page).title == "Lighthouse & Harbour"
    assert extract(Path("plain.txt"), data=b"Title\n\nText.\n").title == "plain"
    assert extract(Path("main.py"), data=b"print('hi')\n").title == "main.py"


def _pdf_with_title(metadata_title: str, heading: str | None) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page()
    if heading:
        page.insert_text((72, 80), heading, fontsize=24)
    page.insert_text((72, 140), "The committee approved the new lighthouse lamp.", fontsize=10)
    doc.set_metadata({"title": metadata_title})
    data = doc.tobytes()
    doc.close()
    return bytes(data)


@pytest.mark.parametrize(
    ("metadata", "heading", "expected"),
    [
        ("Microsoft Word - Lamp decision.docx", "Minutes", "Lamp decision"),
        ("untitled", "Harbour Committee Minutes", "Harbour Committee Minutes"),
        ("Document Title", None, "minutes_0412"),
    ],
)
def test_pdf_title(metadata: str, heading: str | None, expected: str) -> None:
    doc = extract(Path("minutes_0412.pdf"), data=_pdf_with_title(metadata, heading))
    assert doc.title == expected


@needs_corpus
def test_corpus_placeholder_titles_are_replaced() -> None:
    """Files whose metadata says "none", "Document Title" or a file name, or whose first heading
    is "Title", show a real title or their file name: never the placeholder."""
    shown = {name: corpus_result(name) for name in EXPECTED}
    titles = {n: r.title for n, r in shown.items() if isinstance(r, Extracted)}
    assert titles["v110-changes.pdf"] == "MuPDF v1.10 Changes and their Implications for PyMuPDF"
    assert titles["001003ED.pdf"] == "Schöne neue Welten"
    assert titles["test_open2.docx"] == "test_open2"
    assert titles["test_markdown_bad_unicode.md"] == "test_markdown_bad_unicode"
    for name, title in titles.items():
        assert meaningful_title(title) or title == Path(name).stem, (name, title)


def test_reasons_say_what_a_textless_document_held(tmp_path: Path) -> None:
    # Glyphs that map to no characters (Type 3 fonts): not called a scan.
    with pytest.raises(ExtractionError) as glyphs:
        extract(CORPUS / "type3font.pdf")
    assert "Type 3" in str(glyphs.value) and "scanned" not in str(glyphs.value)

    # Only vector drawings: said so, not "scanned pages".
    doc = pymupdf.open()
    page = doc.new_page()
    for i in range(40):
        page.draw_line((50, 50 + 10 * i), (500, 60 + 10 * i))
    drawing = tmp_path / "drawing.pdf"
    doc.save(drawing)
    with pytest.raises(ExtractionError) as drawn:
        extract(drawing)
    assert "vector drawings" in str(drawn.value) and "scanned" not in str(drawn.value)


def test_reasons_for_damaged_and_unreadable_scans(tmp_path: Path) -> None:
    # A damaged file says what MuPDF said about it.
    with pytest.raises(ExtractionError) as damaged:
        extract(Path("x.pdf"), data=b"%PDF-1.7\n" + bytes(range(256)) * 20)
    assert "damaged; MuPDF said: " in str(damaged.value)
    # A scan on which OCR finds no words says so (not "no text layer", not "drawings").
    doc = pymupdf.open()
    page = doc.new_page(width=20, height=20)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 4, 4), False)
    pix.clear_with(200)
    page.insert_image(page.rect, pixmap=pix)
    scan = tmp_path / "tiny-scan.pdf"
    doc.save(scan)
    if not ocr_available("eng"):
        with pytest.raises(ExtractionError, match="no text layer — install Tesseract"):
            extract(scan)
        return
    with pytest.raises(ExtractionError, match="scanned pages, but OCR could not read any text on them"):
        extract(scan)
