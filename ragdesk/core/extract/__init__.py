"""Turn one file into text with page and section positions: ``extract(path) -> Extracted``.

One function per format family:

* PyMuPDF documents (PDF, EPUB, XPS/OXPS, MOBI, FB2, CBZ, SVG, HTML/XHTML and the Office formats
  this MuPDF build reads: DOCX, XLSX, PPTX, HWPX). Headings come from the document's outline
  when it has one that matches the page text, otherwise from font size and weight; ruled tables
  are found with ``Page.find_tables`` and kept as one block of `` | ``-separated rows (first row =
  header). Pages without a text layer are read by Tesseract OCR when it is installed.
* Text read directly: plain text, Markdown (block structure from markdown-it-py), source code,
  CSV/TSV, JSON/JSON Lines and e-mail (.eml). A text file is one page; offsets index its
  decoded text (the Markdown source as written, for Markdown). The encoding is detected with
  charset-normalizer, never assumed.

Every failure a user can cause -- an empty, corrupt, encrypted, oversized, binary or unsupported
file -- raises :class:`ExtractionError` (or :class:`UnsupportedFormat`) whose message is a short
reason meant for that user. PyMuPDF is not thread-safe: call ``extract`` from one thread at a
time (the indexer's worker).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable

from charset_normalizer import from_bytes

from ragdesk.core.records import Block, Extracted, Page
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.extract")

MB = 1024 * 1024


class ExtractionError(RagdeskError):
    """A file that should be readable but is not; ``str(error)`` is the reason shown to the user."""


class UnsupportedFormat(ExtractionError):
    """A file of a kind RagDesk does not read (legacy .doc, an unknown extension, ...)."""


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one bad file from exhausting memory or time."""

    max_file_bytes: int = 200 * MB
    max_pages: int = 10_000
    max_uncompressed_bytes: int = 500 * MB  # zip containers (DOCX, EPUB, ...), all members
    max_compression_ratio: float = 100.0  # uncompressed / compressed, for zip containers
    ocr: bool = True
    ocr_language: str = "eng"
    ocr_dpi: int = 300
    ocr_max_pages: int = 2_000  # beyond this, scanned pages are skipped with a warning


# --- formats ----------------------------------------------------------------------------------

# Formats read through PyMuPDF: our format name -> PyMuPDF filetype.
_MUPDF_FILETYPE = {
    "pdf": "pdf",
    "epub": "epub",
    "xps": "xps",
    "mobi": "mobi",
    "fb2": "fb2",
    "cbz": "cbz",
    "svg": "svg",
    "html": "html",
    "xhtml": "xhtml",
    "docx": "docx",
    "xlsx": "xlsx",
    "pptx": "pptx",
    "hwpx": "hwpx",
}
# Fixed-layout formats whose picture-only pages are scans worth OCR; in e-books and office
# files such pages are covers and illustrations.
_SCANNABLE = {"pdf", "xps", "cbz"}
_ZIP_FORMATS = {"epub", "xps", "cbz", "docx", "xlsx", "pptx", "hwpx"}
_LABEL = {
    "pdf": "PDF",
    "epub": "EPUB",
    "xps": "XPS",
    "mobi": "MOBI",
    "fb2": "FB2",
    "cbz": "comic book (CBZ)",
    "svg": "SVG",
    "html": "HTML",
    "xhtml": "XHTML",
    "docx": "Word (.docx)",
    "xlsx": "Excel (.xlsx)",
    "pptx": "PowerPoint (.pptx)",
    "hwpx": "Hangul (.hwpx)",
    "text": "text",
    "markdown": "Markdown",
    "code": "source code",
    "csv": "CSV",
    "json": "JSON",
    "email": "e-mail",
}

_CODE_EXTENSIONS = frozenset(
    """py pyi pyx pxd js mjs cjs jsx ts tsx c h cc cpp cxx hpp hh hxx cs java kt kts scala go rs rb
    php pl pm swift m mm r jl lua sh bash zsh fish ps1 psm1 bat cmd sql yaml yml toml ini cfg conf
    properties xml xsd xsl gradle cmake mk css scss sass less vue svelte dart ex exs erl hrl hs ml
    mli clj cljs groovy tf hcl proto graphql gql f f90 f95 for pas asm s v sv vhd vhdl tcl el
    lisp scm rkt nim zig""".split()
)
_EXTENSIONS: dict[str, str] = {
    "pdf": "pdf",
    "epub": "epub",
    "xps": "xps",
    "oxps": "xps",
    "mobi": "mobi",
    "fb2": "fb2",
    "cbz": "cbz",
    "svg": "svg",
    "html": "html",
    "htm": "html",
    "xhtml": "xhtml",
    "xht": "xhtml",
    "docx": "docx",
    "xlsx": "xlsx",
    "pptx": "pptx",
    "hwpx": "hwpx",
    "txt": "text",
    "text": "text",
    "log": "text",
    "rst": "text",
    "adoc": "text",
    "asciidoc": "text",
    "org": "text",
    "tex": "text",
    "bib": "text",
    "srt": "text",
    "vtt": "text",
    "md": "markdown",
    "markdown": "markdown",
    "mdown": "markdown",
    "mkd": "markdown",
    "csv": "csv",
    "tsv": "csv",
    "tab": "csv",
    "json": "json",
    "jsonl": "json",
    "ndjson": "json",
    "geojson": "json",
    "eml": "email",
    **{ext: "code" for ext in _CODE_EXTENSIONS},
}
# Files commonly named without an extension.
_BARE_NAMES = {
    "readme": "text",
    "license": "text",
    "copying": "text",
    "changelog": "text",
    "authors": "text",
    "notice": "text",
    "makefile": "code",
    "dockerfile": "code",
    "containerfile": "code",
    "jenkinsfile": "code",
    "vagrantfile": "code",
}

_SAVE_AS = "save it as .docx or PDF"
_KNOWN_UNSUPPORTED = {
    "doc": f"legacy Word .doc is not supported — {_SAVE_AS}",
    "dot": f"legacy Word .dot is not supported — {_SAVE_AS}",
    "xls": "legacy Excel .xls is not supported — save it as .xlsx, CSV or PDF",
    "ppt": "legacy PowerPoint .ppt is not supported — save it as .pptx or PDF",
    "msg": "Outlook .msg is not supported — save the message as .eml",
    "hwp": "legacy Hangul .hwp is not supported — save it as .hwpx or PDF",
    "rtf": f"RTF is not supported — {_SAVE_AS}",
    "odt": f"OpenDocument text is not supported — {_SAVE_AS}",
    "ods": "OpenDocument spreadsheets are not supported — save it as .xlsx or CSV",
    "odp": "OpenDocument presentations are not supported — save it as .pptx or PDF",
    "pages": "Apple Pages files are not supported — export it as PDF",
    "numbers": "Apple Numbers files are not supported — export it as CSV or PDF",
    "key": "Apple Keynote files are not supported — export it as PDF",
    "zip": "archives are not opened — unpack it first",
    "7z": "archives are not opened — unpack it first",
    "rar": "archives are not opened — unpack it first",
    "tar": "archives are not opened — unpack it first",
    "gz": "archives are not opened — unpack it first",
    "tgz": "archives are not opened — unpack it first",
    "bz2": "archives are not opened — unpack it first",
    "xz": "archives are not opened — unpack it first",
}
for _image in ("png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "heic"):
    _KNOWN_UNSUPPORTED[_image] = (
        "image files are not indexed — put scans in a PDF to have them read"
    )

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_REASONS = {
    "doc": _KNOWN_UNSUPPORTED["doc"],
    "docx": f"legacy Word .doc (renamed .docx) is not supported — {_SAVE_AS}",
    "dot": _KNOWN_UNSUPPORTED["dot"],
    "xls": _KNOWN_UNSUPPORTED["xls"],
    "xlsx": "legacy Excel .xls (renamed .xlsx) is not supported — save it as .xlsx, CSV or PDF",
    "ppt": _KNOWN_UNSUPPORTED["ppt"],
    "pptx": "legacy PowerPoint .ppt (renamed .pptx) is not supported — save it as .pptx or PDF",
    "msg": _KNOWN_UNSUPPORTED["msg"],
    "hwp": _KNOWN_UNSUPPORTED["hwp"],
}


def _ext(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def format_by_name(path: Path) -> str | None:
    """The format a file's name suggests (None if RagDesk does not read such names); the
    content may still say otherwise (see detect_format)."""
    ext = _ext(path)
    if ext:
        return _EXTENSIONS.get(ext)
    return _BARE_NAMES.get(path.name.lower())


# Formats read by our own pure-Python code (no native parser, no decompression): the indexer
# reads small files of these kinds in its own process.
PLAIN_FORMATS = frozenset({"text", "markdown", "code", "csv", "json"})


def supported(path: Path) -> bool:
    """True if RagDesk reads files with this name (by extension; content is checked by extract).

    Files that are known but unsupported (legacy .doc, images, archives) return False;
    ``extract`` on them raises :class:`UnsupportedFormat` with a reason worth showing.
    """
    return format_by_name(Path(path)) is not None


def detect_format(path: Path, head: bytes) -> str:
    """The format of a file from its extension and its first bytes (at least 4 KB if it has them).

    Magic bytes win over the extension for PDF, OLE (legacy Office) and MOBI, so a PDF named .bin
    is read as a PDF and a .doc renamed .docx is still refused with the right reason. Zip
    containers with an unknown extension are told apart by :func:`extract` from their members.
    Raises UnsupportedFormat for everything else RagDesk does not read.
    """
    path = Path(path)
    ext = _ext(path)
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(_OLE_MAGIC):
        raise UnsupportedFormat(
            _OLE_REASONS.get(
                ext, "legacy Microsoft Office (OLE) file is not supported — save it as PDF"
            )
        )
    if head[60:68] == b"BOOKMOBI":
        return "mobi"
    by_name = format_by_name(path)
    if by_name == "pdf":  # no %PDF header (checked above): a download error page, or damage
        raise ExtractionError("not a PDF file (no PDF header) — it is damaged or misnamed")
    if by_name is not None:
        return by_name
    if ext in _KNOWN_UNSUPPORTED:
        raise UnsupportedFormat(_KNOWN_UNSUPPORTED[ext])
    if head.startswith(b"PK\x03\x04"):
        return "zip"  # resolved from the members in extract()
    raise UnsupportedFormat(
        f"unsupported file type .{ext}" if ext else "unsupported file type (no extension)"
    )


# --- entry point ------------------------------------------------------------------------------


def extract(path: Path, data: bytes | None = None, limits: Limits = Limits()) -> Extracted:
    """Read one file into pages of text and structural blocks.

    ``data`` is the file's content when the caller has already read it (the indexer reads once
    and hashes); otherwise the file is read here, after its size is checked against the limit.
    Raises ExtractionError / UnsupportedFormat with a short reason for the user.
    """
    path = Path(path)
    if data is None:
        data = _read_bounded(path, limits)
    if len(data) > limits.max_file_bytes:
        raise ExtractionError(too_big(limits))
    if not data:
        raise ExtractionError("zero-byte file")
    fmt = detect_format(path, data[:4096])
    if fmt == "zip":
        fmt = _zip_format(data)
    warnings: list[str] = []
    try:
        if fmt in _MUPDF_FILETYPE:
            result = _extract_mupdf(data, fmt, path, limits, warnings)
        else:
            result = _TEXT_HANDLERS[fmt](data, path, warnings)
    except ExtractionError:
        raise
    except MemoryError:
        raise ExtractionError("not enough memory to read this file") from None
    except Exception as exc:  # parsers fail in many ways on hostile input; the batch goes on
        log.warning("could not read %s (%s)", path.name, fmt, exc_info=True)
        raise ExtractionError(f"corrupt or unreadable {_LABEL.get(fmt, fmt)} file") from exc
    if not any(p.text.strip() for p in result.pages):
        raise ExtractionError(_no_text_reason(fmt))
    return result


def _read_bounded(path: Path, limits: Limits) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise ExtractionError(too_big(limits))
        with path.open("rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)  # the file may grow after stat()
    except FileNotFoundError:
        raise ExtractionError("file not found") from None
    except PermissionError:
        raise ExtractionError("permission denied") from None
    except IsADirectoryError:
        raise ExtractionError("is a folder, not a file") from None
    except OSError as exc:
        raise ExtractionError(f"cannot read the file ({exc.strerror or exc})") from None
    if len(data) > limits.max_file_bytes:
        raise ExtractionError(too_big(limits))
    return data


def too_big(limits: Limits) -> str:
    """The reason given for a file over `limits.max_file_bytes`."""
    n = limits.max_file_bytes
    size = f"{n // MB} MB" if n >= MB and n % MB == 0 else f"{n:,} bytes"
    return f"file is larger than the {size} limit"


def _no_text_reason(fmt: str) -> str:
    if fmt in ("svg", "cbz"):
        return "no text found (the file holds only drawings or images)"
    return "no text found in the document"


# --- zip containers ---------------------------------------------------------------------------


def _open_zip(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ExtractionError("corrupt or truncated file (damaged zip container)") from exc


def _zip_format(data: bytes) -> str:
    """Tell a zip container's document format from its members (for unknown extensions)."""
    with _open_zip(data) as zf:
        names = set(zf.namelist())
        if "mimetype" in names:
            with zf.open("mimetype") as fh:
                if fh.read(64).strip() == b"application/epub+zip":
                    return "epub"
        if "word/document.xml" in names:
            return "docx"
        if "xl/workbook.xml" in names:
            return "xlsx"
        if "ppt/presentation.xml" in names:
            return "pptx"
        if "Contents/section0.xml" in names:
            return "hwpx"
        if any(n.endswith(".fdseq") for n in names) or "FixedDocSeq.fdseq" in names:
            return "xps"
    raise UnsupportedFormat("archives are not opened — unpack it first")


def _check_zip(data: bytes, fmt: str, limits: Limits) -> None:
    """Refuse zip bombs and damaged containers before MuPDF decompresses anything.

    The declared sizes are checked first (cheap); then every member is decompressed and its CRC
    verified (``testzip``), which also catches headers that under-declare their size, because
    reading stops at the declared size and the CRC no longer matches. That pass is bounded by the
    declared total, already capped.
    """
    if not data.startswith(b"PK"):
        raise ExtractionError(
            f"not a valid {_LABEL[fmt]} file (corrupt, or the extension does not match)"
        )
    bomb = "compressed content expands too much (possible zip bomb)"
    with _open_zip(data) as zf:
        infos = zf.infolist()
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > 10 * MB and info.file_size > limits.max_compression_ratio * max(
                info.compress_size, 1
            ):
                raise ExtractionError(bomb)
        if total > limits.max_uncompressed_bytes:
            raise ExtractionError(bomb)
        if total > 10 * MB and total > limits.max_compression_ratio * len(data):
            raise ExtractionError(bomb)
        try:
            bad = zf.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise ExtractionError("corrupt or truncated file (damaged zip container)") from exc
        if bad is not None:
            raise ExtractionError("corrupt or truncated file (damaged zip container)")


# --- PyMuPDF ----------------------------------------------------------------------------------

_pymupdf: Any = None


def _mupdf() -> Any:
    """Import PyMuPDF once and keep its chatter off stderr/stdout (we collect warnings)."""
    global _pymupdf
    if _pymupdf is None:
        import pymupdf

        pymupdf.TOOLS.mupdf_display_errors(False)
        pymupdf.TOOLS.mupdf_display_warnings(False)
        if hasattr(pymupdf, "no_recommend_layout"):  # 1.26.x prints a tip on find_tables()
            pymupdf.no_recommend_layout()
        _pymupdf = pymupdf
    return _pymupdf


def _tessdata_dir(language: str) -> str | None:
    """The Tesseract language folder holding ``<language>.traineddata``, or None.

    PyMuPDF runs Tesseract in-process and needs only this folder (TESSDATA_PREFIX); we look for
    it ourselves so that no shell command is run.
    """
    first = language.split("+")[0]
    candidates: list[Path] = []
    env = os.environ.get("TESSDATA_PREFIX")
    if env:
        candidates += [Path(env), Path(env) / "tessdata"]
    for root in ("/usr/share/tesseract-ocr", "/usr/local/share/tesseract-ocr"):
        candidates += sorted(Path(root).glob("*/tessdata"), reverse=True)
    candidates += [
        Path("/usr/share/tessdata"),
        Path("/usr/local/share/tessdata"),
        Path("/opt/homebrew/share/tessdata"),
        Path("/opt/local/share/tessdata"),
        Path(r"C:\Program Files\Tesseract-OCR\tessdata"),
    ]
    exe = shutil.which("tesseract")
    if exe:
        candidates.append(Path(exe).resolve().parent.parent / "share" / "tessdata")
    for folder in candidates:
        if (folder / f"{first}.traineddata").is_file():
            return str(folder)
    return None


def ocr_available(language: str = "eng") -> bool:
    """Whether scanned pages can be read: Tesseract's data for ``language`` is installed."""
    return _tessdata_dir(language) is not None


_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160), 0xFFFE, 0xFFFF])
_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef"
)
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t]*\n[ \t]*(?=[{_CJK}])")
_WS_BREAK = re.compile(r"[ \t]*\n\s*")


def _clean(text: str) -> str:
    """Drop control characters (Type3 and broken fonts emit them as 'text')."""
    return text.translate(_CONTROL)


def _one_line(text: str) -> str:
    """Join wrapped lines of a table cell: no space between CJK characters, one elsewhere."""
    text = _CJK_BREAK.sub("", text.strip())
    return _WS_BREAK.sub(" ", text)


def _illegible(text: str) -> bool:
    """Text whose glyphs have no Unicode mapping: mostly U+FFFD or private-use characters."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return True
    bad = sum(1 for c in chars if c == "\ufffd" or unicodedata.category(c) == "Co")
    return bad > 0.5 * len(chars)


@dataclass
class _Line:
    text: str
    size: float
    bold: bool
    mono: bool
    block: int  # index of the PyMuPDF text block it came from
    bbox: tuple[float, float, float, float]
    role: str = "body"  # "body" | "heading" | "code" | "table"
    level: int = 0
    group: int = -1  # lines of one outline heading share a group id


@dataclass
class _PageLines:
    lines: list[_Line] = field(default_factory=list)
    tables: list[tuple[tuple[float, float, float, float], str]] = field(default_factory=list)
    ocr: bool = False


_MONO_FONT = re.compile(r"mono|courier|consol|menlo|typewriter|code|inconsolata|\btt", re.I)
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.I)


_LEADERS = re.compile(r"(?:[ \t]?[.·…]){5,}[ \t]?")  # table-of-contents dot leaders


def _dict_lines(page_dict: dict[str, Any]) -> list[_Line]:
    lines: list[_Line] = []
    for block_no, block in enumerate(page_dict.get("blocks", ())):
        if block.get("type") != 0:
            continue
        for line in block.get("lines", ()):
            spans = [s for s in line.get("spans", ()) if s.get("text")]
            text = _LEADERS.sub(" … ", _clean("".join(s["text"] for s in spans))).strip()
            if not text or text == "[image]":  # MuPDF's stand-in for an HTML/EPUB picture
                continue
            weights: Counter[float] = Counter()
            bold = mono = True
            for s in spans:
                n = len(s["text"].strip())
                if not n:
                    continue
                weights[round(float(s["size"]) * 2) / 2] += n
                bold &= bool(s["flags"] & 16) or bool(_BOLD_FONT.search(s.get("font", "")))
                mono &= bool(s["flags"] & 8) or bool(_MONO_FONT.search(s.get("font", "")))
            size = weights.most_common(1)[0][0] if weights else 0.0
            lines.append(_Line(text, size, bold, mono, block_no, tuple(line["bbox"])))
    return lines


def _norm_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _ruled_grid(page: Any) -> bool:
    """Whether the page's vector drawings could form a ruled table (cheap gate for find_tables)."""
    xs: set[int] = set()
    ys: set[int] = set()
    for path in page.get_drawings():
        for item in path.get("items", ()):
            if item[0] == "re":
                r = item[1]
                xs |= {round(r.x0), round(r.x1)}
                ys |= {round(r.y0), round(r.y1)}
            elif item[0] == "l":
                a, b = item[1], item[2]
                if abs(a.y - b.y) < 1:
                    ys.add(round(a.y))
                elif abs(a.x - b.x) < 1:
                    xs.add(round(a.x))
    return len(xs) >= 2 and len(ys) >= 3


def _find_tables(page: Any) -> list[tuple[tuple[float, float, float, float], str]]:
    if not _ruled_grid(page):
        return []
    found = []
    for table in page.find_tables().tables:
        if table.row_count < 2 or table.col_count < 2:
            continue
        rows = [[_one_line(_clean(c or "")) for c in row] for row in table.extract()]
        cells = [c for row in rows for c in row]
        if sum(1 for c in cells if c) < 0.5 * len(cells):
            continue
        text = "\n".join(" | ".join(row) for row in rows if any(row))
        found.append((tuple(table.bbox), text))
    return found


def _inside(bbox: tuple[float, ...], area: tuple[float, ...]) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return area[0] - 1 <= cx <= area[2] + 1 and area[1] - 1 <= cy <= area[3] + 1


_OCR_NOISE = re.compile(r"[^\W\d_]{2,}|\d")


def _ocr_lines(page: Any, limits: Limits, tessdata: str, flags: int) -> list[_Line]:
    textpage = page.get_textpage_ocr(
        flags=flags, language=limits.ocr_language, dpi=limits.ocr_dpi, full=True, tessdata=tessdata
    )
    lines = _dict_lines(page.get_text("dict", textpage=textpage, flags=flags))
    kept = []
    for line in lines:
        # OCR of photos yields specks read as "|", "iz", "‘"; keep lines with real words.
        alnum = sum(c.isalnum() for c in line.text)
        visible = len(line.text.replace(" ", ""))
        if alnum >= 3 and _OCR_NOISE.search(line.text) and alnum >= 0.5 * visible:
            line.size = 0.0  # OCR sizes say nothing about headings
            kept.append(line)
    return kept


def _extract_mupdf(
    data: bytes, fmt: str, path: Path, limits: Limits, warnings: list[str]
) -> Extracted:
    pymupdf = _mupdf()
    if fmt in _ZIP_FORMATS:
        _check_zip(data, fmt, limits)
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    label = _LABEL[fmt]
    try:
        doc = pymupdf.open(stream=data, filetype=_MUPDF_FILETYPE[fmt])
    except Exception as exc:
        raise ExtractionError(f"corrupt or unreadable {label} file") from exc
    try:
        if doc.needs_pass:
            raise ExtractionError(f"password-protected {label}")
        count = doc.page_count
        if count == 0:
            raise ExtractionError(f"corrupt or truncated {label} (no pages)")
        if count > limits.max_pages:
            raise ExtractionError(
                f"document has {count:,} pages, more than the {limits.max_pages:,}-page limit"
            )
        pages = _read_pages(doc, fmt, limits, warnings)
        outline = _outline(doc, count)
        meta_title = (doc.metadata or {}).get("title") or ""
        repaired = bool(getattr(doc, "is_pdf", False) and getattr(doc, "is_repaired", False))
    finally:
        doc.close()
    if repaired:
        warnings.append("the PDF was damaged and has been repaired; some text may be missing")
    mupdf_msgs = [m for m in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines() if m.strip()]
    for msg in list(dict.fromkeys(mupdf_msgs))[:5]:
        msg = msg.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates from fonts
        warnings.append(f"MuPDF: {msg}")
    if not any(p.lines or p.tables for p in pages) and any(p.ocr for p in pages):
        raise ExtractionError("no text found — OCR could not read the scanned pages")

    body_size = _assign_headings(pages, outline)
    out_pages, blocks = _layout(pages)
    title = _plausible_title(meta_title) or _cover_title(pages, body_size)
    if not title:
        title = next(
            (out_pages[b.page - 1].text[b.start : b.end] for b in blocks if b.kind == "heading"),
            "",
        )
        title = " ".join(title.split())[:200]
    return Extracted(
        title=title or path.stem, format=fmt, pages=out_pages, blocks=blocks, warnings=warnings
    )


def _read_pages(doc: Any, fmt: str, limits: Limits, warnings: list[str]) -> list[_PageLines]:
    pymupdf = _mupdf()
    flags = pymupdf.TEXT_MEDIABOX_CLIP | pymupdf.TEXT_DEHYPHENATE | pymupdf.TEXT_PRESERVE_WHITESPACE
    pages: list[_PageLines] = []
    scanned: list[int] = []  # pages with no usable text but something to look at
    unreadable = 0
    for pno in range(doc.page_count):
        result = _PageLines()
        pages.append(result)
        try:
            page = doc.load_page(pno)
            lines = _dict_lines(page.get_text("dict", flags=flags))
            illegible = bool(lines) and _illegible(" ".join(ln.text for ln in lines))
            if illegible:
                lines = []
            result.lines = lines
            if lines:
                result.tables = _find_tables(page) if fmt != "svg" else []
            elif fmt in _SCANNABLE and (
                illegible or page.get_image_info() or len(page.get_drawings()) >= 30
            ):
                scanned.append(pno)
        except Exception:
            log.debug("page %d could not be read", pno + 1, exc_info=True)
            unreadable += 1
    if unreadable:
        warnings.append(f"{unreadable} page(s) could not be read")
    if not scanned:
        return pages

    tessdata = _tessdata_dir(limits.ocr_language) if limits.ocr else None
    has_text = any(p.lines for p in pages)
    if tessdata is None:
        reason = (
            "no text layer — install Tesseract to read scanned pages"
            if limits.ocr
            else "no text layer — scanned pages need OCR, which is switched off"
        )
        if not has_text:
            raise ExtractionError(reason)
        warnings.append(f"{len(scanned)} page(s) without a text layer were skipped: {reason}")
        return pages
    todo = scanned[: limits.ocr_max_pages]
    if len(scanned) > len(todo):
        warnings.append(
            f"only the first {len(todo)} of {len(scanned)} scanned pages were read by OCR"
        )
    read = 0
    for pno in todo:
        try:
            lines = _ocr_lines(doc.load_page(pno), limits, tessdata, flags)
        except Exception:
            log.warning("OCR failed on page %d", pno + 1, exc_info=True)
            continue
        pages[pno].lines = lines
        pages[pno].ocr = True
        read += bool(lines)
    log.info("OCR read %d of %d scanned page(s)", read, len(todo))
    warnings.append(f"text of {len(todo)} scanned page(s) was read by OCR and may contain errors")
    return pages


def _outline(doc: Any, count: int) -> list[tuple[int, str, int]]:
    try:
        toc = doc.get_toc(simple=True)
    except Exception:
        return []
    return [(lvl, title, page) for lvl, title, page in toc if 1 <= page <= count and title.strip()]


def _match_outline(pages: list[_PageLines], outline: list[tuple[int, str, int]]) -> int:
    """Mark lines that spell an outline entry (possibly over several lines) as headings."""
    matched = 0
    for group, (level, title, page_no) in enumerate(outline):
        key = _norm_key(title)
        if not key:
            continue
        found = False
        for pno in (page_no - 1, page_no):  # outlines often point one page early
            if pno >= len(pages) or found:
                continue
            lines = pages[pno].lines
            for i in range(len(lines)):
                if lines[i].role == "heading":
                    continue
                acc = ""
                for j in range(i, min(i + 4, len(lines))):
                    acc += _norm_key(lines[j].text)
                    if acc == key:
                        for ln in lines[i : j + 1]:
                            ln.role, ln.level, ln.group = "heading", min(level, 6), group
                        found = True
                        break
                    if not key.startswith(acc):
                        break
                if found:
                    break
        matched += found
    return matched


def _cover_title(pages: list[_PageLines], body_size: float) -> str:
    """The largest type on the first page with text, if it is clearly larger than body text."""
    first = next((p for p in pages if p.lines and not p.ocr), None)
    if first is None or body_size <= 0:
        return ""
    top = max(ln.size for ln in first.lines)
    if top < body_size * 1.3:
        return ""
    start = next(i for i, ln in enumerate(first.lines) if ln.size == top)
    if start > 2 or any(
        ln.size >= body_size * 1.15 or ln.role == "heading" for ln in first.lines[:start]
    ):
        return ""  # a big heading below other large type is a section, not the title
    picked = [first.lines[start].text]
    for ln in first.lines[start + 1 :]:
        if ln.size != top or ln.block != first.lines[start].block:
            break
        picked.append(ln.text)
    title = " ".join(" ".join(picked).split())
    return title if _headingish(title, 200) and len(picked) <= 3 else ""


def _assign_headings(pages: list[_PageLines], outline: list[tuple[int, str, int]]) -> float:
    """Decide each line's role: outline headings if the outline matches, else font-based.

    Returns the body text size (the size most characters are set in).
    """
    all_lines = [ln for p in pages if not p.ocr for ln in p.lines]
    for ln in all_lines:
        if ln.mono and sum(c.isalnum() for c in ln.text) >= 3:  # not a lone bullet glyph
            ln.role = "code"
    if not all_lines:
        return 0.0
    sizes: Counter[float] = Counter()
    bold_chars = total_chars = 0
    for ln in all_lines:
        n = len(ln.text)
        sizes[ln.size] += n
        total_chars += n
        bold_chars += n if ln.bold else 0
    body = sizes.most_common(1)[0][0]
    if outline and _match_outline(pages, outline) >= 0.5 * len(outline):
        return body
    for ln in all_lines:  # the outline did not fit the text: undo partial matches
        if ln.role == "heading":
            ln.role, ln.level, ln.group = "body", 0, -1
    if body <= 0:
        return body
    # Candidate heading sizes: clearly larger than body text and not themselves a second body.
    # In longer documents a size must recur on two pages: type used on one page only is a cover
    # or a one-off, and would otherwise sit at the top of every heading path that follows.
    pages_of: dict[float, set[int]] = {}
    for pno, page in enumerate(pages):
        for ln in page.lines:
            pages_of.setdefault(ln.size, set()).add(pno)
    min_pages = 2 if sum(1 for p in pages if p.lines) >= 3 else 1
    heading_sizes = sorted(
        (
            s
            for s, n in sizes.items()
            if s >= body * 1.15 and n < 0.3 * total_chars and len(pages_of[s]) >= min_pages
        ),
        reverse=True,
    )
    level_of = {s: min(i + 1, 6) for i, s in enumerate(heading_sizes)}
    bold_level = min(len(heading_sizes) + 1, 6)
    bold_headings = bold_chars < 0.4 * total_chars

    for page in pages:
        if page.ocr:
            continue
        lines = page.lines
        i = 0
        while i < len(lines):
            ln = lines[i]
            if ln.role == "body" and ln.size in level_of and _headingish(ln.text, 150):
                j = i
                while (
                    j + 1 < len(lines)
                    and lines[j + 1].size == ln.size
                    and lines[j + 1].block == ln.block
                    and lines[j + 1].role == "body"
                ):
                    j += 1
                if j - i < 3:  # at most 3 lines: longer runs of big type are not headings
                    for k in range(i, j + 1):
                        lines[k].role, lines[k].level = "heading", level_of[ln.size]
                i = j + 1
                continue
            if (
                bold_headings
                and ln.role == "body"
                and ln.bold
                and ln.size >= body
                and _headingish(ln.text, 100)
                and not ln.text.rstrip().endswith((".", ",", ";", ":"))
                and (i == 0 or lines[i - 1].block != ln.block)  # first line of its block
                and (i + 1 == len(lines) or lines[i + 1].block != ln.block or not lines[i + 1].bold)
            ):
                ln.role, ln.level = "heading", bold_level
            i += 1
    return body


_WORDISH = re.compile(rf"[^\W\d_]{{3,}}|[{_CJK}]")


def _headingish(text: str, max_len: int) -> bool:
    """Short, and with a real word in it (not a page number, roman numeral or bullet)."""
    return 2 <= len(text) <= max_len and bool(_WORDISH.search(text))


_LIST_MARK = re.compile(
    r"^\s*(?:[•◦▪▫‣⁃●○■□–—\-*+]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])\s+"  # bullets, 1. 2) a) (b)
)


def _layout(pages: list[_PageLines]) -> tuple[list[Page], list[Block]]:
    """Build each page's text and its blocks: groups of lines with the same role and source."""
    out_pages: list[Page] = []
    blocks: list[Block] = []
    for pno, page in enumerate(pages, start=1):
        items: list[tuple[str, int, str]] = []  # (kind, level, text)
        pending_tables = list(page.tables)
        placed: set[int] = set()
        group: list[_Line] = []

        def flush() -> None:
            if not group:
                return
            first = group[0]
            if first.role == "heading":
                kind = "heading"
            elif first.role == "code":
                kind = "code"
            elif _LIST_MARK.match(first.text):
                kind = "list"
            else:
                kind = "paragraph"
            items.append((kind, first.level, _join_lines([ln.text for ln in group])))
            group.clear()

        for ln in page.lines:
            table_at = next(
                (k for k, (bbox, _) in enumerate(pending_tables) if _inside(ln.bbox, bbox)), None
            )
            if table_at is not None:
                if table_at not in placed:
                    flush()
                    placed.add(table_at)
                    items.append(("table", 0, pending_tables[table_at][1]))
                continue
            if group:
                prev = group[-1]
                same = prev.role == ln.role and (
                    (prev.block == ln.block and prev.level == ln.level)
                    or (ln.role == "heading" and prev.group == ln.group >= 0)
                )
                if not same:
                    flush()
            group.append(ln)
        flush()
        for k, (_, text) in enumerate(pending_tables):
            if k not in placed:
                items.append(("table", 0, text))

        parts: list[str] = []
        pos = 0
        for kind, level, text in items:
            if parts:
                parts.append("\n\n")
                pos += 2
            blocks.append(Block(pno, pos, pos + len(text), kind, level if kind == "heading" else 0))
            parts.append(text)
            pos += len(text)
        out_pages.append(Page(pno, "".join(parts)))
    return out_pages, blocks


_HYPHENATED = re.compile(r"[^\W\d_]-$")


def _join_lines(lines: list[str]) -> str:
    """Lines of one block, one per row; a word hyphenated across a line break is rejoined."""
    out = ""
    for line in lines:
        if out and _HYPHENATED.search(out) and out[-2].islower() and line[:1].islower():
            out = out[:-1] + line
        else:
            out = f"{out}\n{line}" if out else line
    return out


_FILENAME_TITLE = re.compile(
    r"\.(indd|eps|docx?|pdf|tex|dvi|qxd|qxp|pages|rtf|txt|ps|ai|xlsx?|pptx?|odt|html?|cdr|pub)$",
    re.I,
)


def _plausible_title(title: str) -> str:
    """A metadata title worth showing, or "" (producers fill it with file names and junk)."""
    title = " ".join(_clean(title).split())
    for prefix in ("Microsoft Word - ", "Microsoft PowerPoint - ", "Microsoft Excel - "):
        if title.startswith(prefix):
            title = _FILENAME_TITLE.sub("", title[len(prefix) :]).strip()
    if len(title) < 3 or len(title) > 250 or _FILENAME_TITLE.search(title):
        return ""
    if title.casefold() in {"untitled", "none", "unknown", "title", "document", "null", "n/a"}:
        return ""
    if not any(c.isalpha() for c in title):
        return ""
    return title


# --- text files -------------------------------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_NOT_TEXT = "not a text file (binary content)"


def decode_text(data: bytes, warnings: list[str]) -> str:
    """Decode a text file's bytes: BOM, then strict UTF-8, then charset-normalizer's best guess.

    Mostly-UTF-8 files with a few broken bytes are decoded as UTF-8 with U+FFFD replacements
    (and a warning) rather than guessed as a legacy code page, which would garble every
    non-ASCII character. Among legacy single-byte code pages that fit equally well, cp1252 is
    preferred (charset-normalizer cannot tell Western code pages apart on short texts).
    Raises ExtractionError for binary content.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(encoding.replace("-sig", ""))
            except UnicodeDecodeError:
                text = data[len(bom) :].decode(encoding.replace("-sig", ""), errors="replace")
                warnings.append(f"invalid {encoding.upper()} bytes were replaced")
            return _check_textual(text)
    try:
        return _check_textual(data.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    sample = data[: 1 * MB]
    if b"\x00" not in sample:
        lenient = data.decode("utf-8", errors="replace")
        bad = lenient.count("\ufffd")
        multibyte = sum(1 for c in lenient if ord(c) > 127 and c != "\ufffd")
        if multibyte >= max(bad, 1):
            warnings.append(f"{bad} invalid UTF-8 byte sequence(s) were replaced")
            return _check_textual(lenient)
    matches = from_bytes(sample if len(data) > len(sample) else data)
    best = matches.best()
    if best is None:
        raise ExtractionError(_NOT_TEXT)
    encoding = best.encoding
    if "utf" not in encoding:
        close = [
            m
            for m in matches
            if m.chaos <= best.chaos + 0.1 and m.coherence >= best.coherence - 0.1
        ]
        names = {name for m in close for name in [m.encoding, *m.could_be_from_charset]}
        if "cp1252" in names:
            encoding = "cp1252"
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        text = data.decode(encoding, errors="replace") if encoding else ""
    if b"\x00" in sample and "utf_16" not in encoding and "utf_32" not in encoding:
        raise ExtractionError(_NOT_TEXT)
    warnings.append(f"not UTF-8: decoded as {encoding}")
    return _check_textual(text)


def _check_textual(text: str) -> str:
    sample = text[:100_000]
    controls = sum(1 for c in sample if c < " " and c not in "\t\n\r\f") + sample.count("\x7f")
    if controls > max(2, 0.01 * len(sample)):
        raise ExtractionError(_NOT_TEXT)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.translate(_CONTROL | {ord("\t"): "\t", ord("\f"): "\n"})


_PARAGRAPH_SPLIT = re.compile(r"\n[ \t]*\n")


def _paragraph_blocks(text: str, kind: str = "paragraph", base: int = 0) -> list[Block]:
    """Blocks for text separated by blank lines (offsets exact, surrounding whitespace trimmed)."""
    blocks = []
    start = 0
    for m in [*_PARAGRAPH_SPLIT.finditer(text), None]:
        end = m.start() if m else len(text)
        chunk = text[start:end]
        stripped = chunk.strip()
        if stripped:
            s = start + (len(chunk) - len(chunk.lstrip()))
            e = s + len(stripped)
            k = kind
            if kind == "paragraph" and _LIST_MARK.match(stripped):
                k = "list"
            blocks.append(Block(1, base + s, base + e, k, 0))
        if m:
            start = m.end()
    return blocks


def _extract_plain(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    text = decode_text(data, warnings)
    return Extracted(path.stem, "text", [Page(1, text)], _paragraph_blocks(text), warnings)


def _extract_code(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    text = decode_text(data, warnings)
    return Extracted(path.name, "code", [Page(1, text)], _paragraph_blocks(text, "code"), warnings)


def _extract_markdown(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    from markdown_it import MarkdownIt

    text = decode_text(data, warnings)
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    line_starts = [0]
    for m in re.finditer("\n", text):
        line_starts.append(m.end())
    line_starts.append(len(text))

    def span(lines: list[int]) -> tuple[int, int]:
        s = line_starts[min(lines[0], len(line_starts) - 1)]
        e = line_starts[min(lines[1], len(line_starts) - 1)]
        seg = text[s:e]
        return s + (len(seg) - len(seg.lstrip())), s + len(seg.rstrip())

    kinds = {
        "paragraph_open": "paragraph",
        "fence": "code",
        "code_block": "code",
        "table_open": "table",
        "bullet_list_open": "list",
        "ordered_list_open": "list",
        "blockquote_open": "paragraph",
        "html_block": "paragraph",
    }
    blocks: list[Block] = []
    title = ""
    for i, tok in enumerate(tokens):
        if tok.level != 0 or tok.map is None:
            continue
        if tok.type == "heading_open":
            s, e = span(tok.map)
            content = tokens[i + 1].content.strip() if i + 1 < len(tokens) else ""
            at = text.find(content, s, e) if content else -1
            if at >= 0:
                s, e = at, at + len(content)
            if s < e:
                level = int(tok.tag[1:])
                blocks.append(Block(1, s, e, "heading", level))
                if not title and level == 1:
                    title = content
            continue
        kind = kinds.get(tok.type)
        if kind:
            s, e = span(tok.map)
            if s < e:
                blocks.append(Block(1, s, e, kind, 0))
    return Extracted(title or path.stem, "markdown", [Page(1, text)], blocks, warnings)


def _extract_csv(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    text = decode_text(data, warnings)
    if _ext(path) in ("tsv", "tab"):
        dialect: Any = csv.excel_tab
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
    lines: list[str] = []
    try:
        csv.field_size_limit(max(csv.field_size_limit(), 64 * MB))
        for row in csv.reader(io.StringIO(text), dialect):
            cells = [" ".join(c.split()) for c in row]
            if any(cells):
                lines.append(" | ".join(cells))
    except csv.Error as exc:
        warnings.append(f"malformed CSV ({exc}); indexed as plain text")
        return Extracted(path.stem, "csv", [Page(1, text)], _paragraph_blocks(text), warnings)
    body = "\n".join(lines)
    blocks = [Block(1, 0, len(body), "table", 0)] if body else []
    return Extracted(path.stem, "csv", [Page(1, body)], blocks, warnings)


def _flatten_json(value: Any, prefix: str, out: list[str], depth: int = 0) -> None:
    if depth > 64:
        out.append(f"{prefix}: {json.dumps(value, ensure_ascii=False)[:10_000]}")
    elif isinstance(value, dict):
        if not value:
            out.append(f"{prefix}: {{}}")
        for key, item in value.items():
            _flatten_json(item, f"{prefix}.{key}" if prefix else str(key), out, depth + 1)
    elif isinstance(value, list):
        if not value:
            out.append(f"{prefix}: []")
        for i, item in enumerate(value):
            _flatten_json(item, f"{prefix}[{i}]", out, depth + 1)
    else:
        shown = value if isinstance(value, str) else json.dumps(value)
        out.append(f"{prefix}: {' '.join(str(shown).split())}" if prefix else str(shown))


def _extract_json(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    """JSON as ``path.to.key: value`` lines; one block per top-level key or record."""
    text = decode_text(data, warnings)
    records: list[tuple[str, Any]] = []
    try:
        if _ext(path) in ("jsonl", "ndjson"):
            bad = 0
            for n, line in enumerate(text.splitlines()):
                if line.strip():
                    try:
                        records.append((f"[{n}]", json.loads(line)))
                    except ValueError:
                        records.append((f"[{n}]", line.strip()))  # keep its text as it is
                        bad += 1
            if bad:
                warnings.append(f"{bad} line(s) are not valid JSON and were kept as plain text")
        else:
            value = json.loads(text)
            if isinstance(value, dict):
                records = [(str(k), v) for k, v in value.items()]
            elif isinstance(value, list):
                records = [(f"[{i}]", v) for i, v in enumerate(value)]
            else:
                records = [("", value)]
    except (ValueError, RecursionError) as exc:
        warnings.append(f"not valid JSON ({str(exc)[:80]}); indexed as plain text")
        return Extracted(path.stem, "json", [Page(1, text)], _paragraph_blocks(text), warnings)
    parts: list[str] = []
    blocks: list[Block] = []
    pos = 0
    for key, value in records:
        lines: list[str] = []
        _flatten_json(value, key, lines)
        chunk = "\n".join(lines)
        if not chunk.strip():
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        blocks.append(Block(1, pos, pos + len(chunk), "code", 0))
        parts.append(chunk)
        pos += len(chunk)
    return Extracted(path.stem, "json", [Page(1, "".join(parts))], blocks, warnings)


class _HTMLText(HTMLParser):
    """Visible text of an HTML fragment, with line breaks at block elements."""

    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
              "ol", "blockquote", "pre", "hr", "section", "article", "header", "footer"}
    _SKIP = {"script", "style", "head", "title", "noscript", "template"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.cells = 0  # cells seen in the current table row

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n" if tag in ("p", "div", "table") else "\n")
            self.cells = 0
        elif tag in ("td", "th"):
            if self.cells:
                self.parts.append(" | ")
            self.cells += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _part_text(part: Any) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown or lying charset
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", errors="replace")
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    return str(content)


def _extract_email(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    msg = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(msg, EmailMessage)
    if not any(msg.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
        raise ExtractionError("not an e-mail message (no headers found)")
    subject = " ".join(str(msg.get("Subject", "")).split())
    body = ""
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is not None:
        body = _part_text(part)
        if part.get_content_type() == "text/html":
            body = html_to_text(body)
    body = _clean(body.replace("\r\n", "\n")).strip()
    attachments = []
    for att in msg.iter_attachments():
        name = att.get_filename()
        attachments.append(name or att.get_content_type())

    blocks: list[Block] = []
    text = ""
    if subject:
        text = "Subject: "
        blocks.append(Block(1, len(text), len(text) + len(subject), "heading", 1))
        text += subject + "\n"
    header_start = len(text)
    for name in ("From", "To", "Cc", "Date"):
        value = msg.get(name)
        if value:
            text += f"{name}: {' '.join(str(value).split())}\n"
    if attachments:
        text += "Attachments: " + ", ".join(attachments) + "\n"
    if len(text) > header_start:
        blocks.append(Block(1, header_start, len(text) - 1, "paragraph", 0))
    if body:
        text += "\n"
        blocks += _paragraph_blocks(body, base=len(text))
        text += body
    return Extracted(subject or path.stem, "email", [Page(1, text)], blocks, warnings)


_TEXT_HANDLERS: dict[str, Callable[[bytes, Path, list[str]], Extracted]] = {
    "text": _extract_plain,
    "markdown": _extract_markdown,
    "code": _extract_code,
    "csv": _extract_csv,
    "json": _extract_json,
    "email": _extract_email,
}
