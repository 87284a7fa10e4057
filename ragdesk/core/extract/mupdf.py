"""Documents read through PyMuPDF (PDF, EPUB, XPS, MOBI, FB2, CBZ, SVG, HTML and the Office
formats this MuPDF build reads): the lines of each page with their fonts, ruled tables
(`Page.find_tables`, kept as one block of ` | `-separated rows), and Tesseract OCR of pages
without a text layer when Tesseract is installed. PyMuPDF is not thread-safe: one thread at a
time (the indexer's parser)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from ragdesk.core.extract.budget import PageWatch, StepTimeout
from ragdesk.core.extract.formats import (
    LABEL,
    MUPDF_FILETYPE,
    SCANNABLE,
    ZIP_FORMATS,
    ExtractionError,
    Limits,
)
from ragdesk.core.extract.garbage import garbage_lines, is_garbage
from ragdesk.core.extract.html import html_title
from ragdesk.core.extract.layout import (
    Line,
    PageLines,
    assign_headings,
    cover_title,
    layout,
)
from ragdesk.core.extract.text import CJK, clean
from ragdesk.core.extract.title import choose_title, lead_headings
from ragdesk.core.extract.zipsafe import check_zip
from ragdesk.core.records import Extracted

log = logging.getLogger("ragdesk.extract")

_HTML_HEAD = 64 * 1024  # bytes searched for an HTML page's <title>

_pymupdf: Any = None  # PyMuPDF, imported on first use (it is slow to import, and untyped)


def _mupdf() -> Any:
    """Import PyMuPDF once and keep its chatter off stderr/stdout (we collect warnings)."""
    global _pymupdf
    if _pymupdf is None:
        import pymupdf

        module: Any = pymupdf
        module.TOOLS.mupdf_display_errors(False)
        module.TOOLS.mupdf_display_warnings(False)
        if hasattr(module, "no_recommend_layout"):  # 1.26.x prints a tip on find_tables()
            module.no_recommend_layout()
        _pymupdf = module
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


_CJK_BREAK = re.compile(rf"(?<=[{CJK}])[ \t]*\n[ \t]*(?=[{CJK}])")
_WS_BREAK = re.compile(r"[ \t]*\n\s*")


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


def _partly_illegible(lines: list[Line]) -> bool:
    """A page on which a font's glyphs could not be decoded in many lines (extract.garbage):
    the rest of its text may be fine, but OCR of the rendered page reads all of it."""
    return bool(garbage_lines([ln.text for ln in lines]))


def _with_ocr(lines: list[Line], read: list[Line]) -> list[Line]:
    """The decodable `lines` of a page, then the OCR lines `read` that none of them already says
    (most of their words in one kept line, each kept line matching one OCR line)."""
    kept = [ln for ln in lines if not is_garbage(ln.text)]
    said = [set(_WORDS.findall(ln.text.casefold())) for ln in kept]
    body = Counter(ln.size for ln in kept).most_common(1)[0][0] if kept else 0.0
    new = []
    for ln in read:
        words = set(_WORDS.findall(ln.text.casefold()))
        match = next((i for i, s in enumerate(said) if words and len(words & s) >= 0.6 * len(words)), None)
        if match is not None:
            said[match] = set()  # each kept line says one OCR line (a sentence may repeat)
        elif words:
            ln.size = body  # read as body text of the page, never as a heading
            new.append(ln)
    return kept + new


_WORDS = re.compile(r"\w+")


_MONO_FONT = re.compile(r"mono|courier|consol|menlo|typewriter|code|inconsolata|\btt", re.I)
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.I)
# Ornament fonts map their glyphs to letters ("z" for an arrow): they carry no text.
_DINGBAT_FONT = re.compile(r"dingbat|wingding|webding", re.I)


_LEADERS = re.compile(r"(?:[ \t]?[.·…]){5,}[ \t]?")  # table-of-contents dot leaders


def _dict_lines(page_dict: dict[str, Any]) -> list[Line]:
    lines: list[Line] = []
    for block_no, block in enumerate(page_dict.get("blocks", ())):
        if block.get("type") != 0:
            continue
        for line in block.get("lines", ()):
            spans = [
                s
                for s in line.get("spans", ())
                if s.get("text") and not _DINGBAT_FONT.search(s.get("font", ""))
            ]
            text = _LEADERS.sub(" … ", clean("".join(s["text"] for s in spans))).strip()
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
            lines.append(Line(text, size, bold, mono, block_no, tuple(line["bbox"])))
    return lines


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
    finder = page.find_tables()  # None: it failed (it says why on stdout, which we do not see)
    for table in finder.tables if finder is not None else ():
        if table.row_count < 2 or table.col_count < 2:
            continue
        rows = [[_one_line(clean(c or "")) for c in row] for row in table.extract()]
        cells = [c for row in rows for c in row]
        if sum(1 for c in cells if c) < 0.5 * len(cells):
            continue
        text = "\n".join(" | ".join(row) for row in rows if any(row))
        found.append((tuple(table.bbox), text))
    return found


_OCR_NOISE = re.compile(r"[^\W\d_]{2,}|\d")


def _ocr_lines(page: Any, limits: Limits, tessdata: str, flags: int) -> list[Line]:
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


def extract_mupdf(
    data: bytes, fmt: str, path: Path, limits: Limits, warnings: list[str],
    watch: PageWatch | None = None,
) -> Extracted:
    """Read a PyMuPDF document page by page; `watch` bounds each page's optional steps and
    collects what they lost (see budget.py)."""
    pymupdf = _mupdf()
    watch = watch if watch is not None else PageWatch()
    if fmt in ZIP_FORMATS:
        check_zip(data, fmt, limits)
    pymupdf.TOOLS.mupdf_warnings(reset=True)
    label = LABEL[fmt]
    try:
        doc = pymupdf.open(stream=data, filetype=MUPDF_FILETYPE[fmt])
    except Exception as exc:
        said = _mupdf_said(pymupdf, str(exc))
        raise ExtractionError(f"corrupt or unreadable {label} file (damaged{said})") from exc
    try:
        if doc.needs_pass:
            raise ExtractionError(f"encrypted {label} (password needed): it cannot be read without"
                                  " its password")
        count = doc.page_count
        if count == 0:
            raise ExtractionError(f"corrupt or truncated {label} (no pages{_mupdf_said(pymupdf)})")
        if count > limits.max_pages:
            raise ExtractionError(
                f"document has {count:,} pages, more than the {limits.max_pages:,}-page limit"
            )
        pages = _read_pages(doc, fmt, limits, warnings, watch)
        outline = _outline(doc, count)
        meta_title = (doc.metadata or {}).get("title") or ""
        repaired = bool(getattr(doc, "is_pdf", False) and getattr(doc, "is_repaired", False))
    finally:
        doc.close()
    mupdf_msgs = [m for m in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines() if m.strip()]
    mupdf_msgs = [m.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates from fonts
                  for m in dict.fromkeys(mupdf_msgs)]
    if not any(p.lines or p.tables for p in pages):
        if repaired:
            said = f"; MuPDF said: {mupdf_msgs[0]}" if mupdf_msgs else ""
            raise ExtractionError(f"damaged {label} file: no text could be recovered{said}")
        if any(p.ocr for p in pages):
            raise ExtractionError(_no_text_reason({p.no_text for p in pages if p.no_text}))
    if repaired:
        warnings.append("the PDF was damaged and has been repaired; some text may be missing")
    for msg in mupdf_msgs[:5]:
        warnings.append(f"MuPDF: {msg}")
    for pno, page_lines in enumerate(pages):
        for step, reason in page_lines.degraded:
            watch.note(pno, step, reason)

    body_size = assign_headings(pages, outline)
    out_pages, blocks = layout(pages)
    if not meta_title.strip() and fmt in ("html", "xhtml"):
        meta_title = html_title(data[:_HTML_HEAD].decode("utf-8", errors="replace"))
    headings = [cover_title(pages, body_size), *lead_headings(out_pages, blocks)]
    title = choose_title(meta_title, headings, path.name)
    return Extracted(title=title, format=fmt, pages=out_pages, blocks=blocks, warnings=warnings)


def _mupdf_said(pymupdf: Any, first: str = "") -> str:
    """What MuPDF said while failing (its exception and warnings), for a damaged-file reason."""
    said = [first.strip()] if first.strip() else []
    said += [m for m in pymupdf.TOOLS.mupdf_warnings(reset=True).splitlines() if m.strip()]
    said = [m.encode("utf-8", errors="replace").decode("utf-8") for m in dict.fromkeys(said)]
    return f"; MuPDF said: {'; '.join(said[:2])[:200]}" if said else ""


def _no_text_reason(kinds: set[str]) -> str:
    """What a document without a word of text held, said as it was (not every one is a scan)."""
    if "image" in kinds:
        return "no text found — scanned pages, but OCR could not read any text on them"
    if kinds == {"illegible"}:
        return ("no readable text — its fonts map their glyphs to no characters (e.g. Type 3"
                " fonts), and OCR found no words on the pages either")
    return "no text — the pages hold only vector drawings or glyphs, and OCR found no words in them"


def _structured_lines(page: Any, pno: int, flags: int, watch: PageWatch,
                      result: PageLines) -> list[Line]:
    """The page's lines with their fonts (for headings and blocks): the "layout" step. Past
    its budget, the page's plain text without fonts."""
    try:
        with watch.step(pno, "layout"):
            return _dict_lines(page.get_text("dict", flags=flags))
    except StepTimeout as exc:
        result.degraded.append(("layout", str(exc)))
    text = page.get_text("text", flags=flags)
    return [Line(t, 0.0, False, False, i, (0.0, 0.0, 0.0, 0.0))
            for i, t in enumerate(ln.strip() for ln in text.splitlines()) if t]


def _read_pages(doc: Any, fmt: str, limits: Limits, warnings: list[str],
                watch: PageWatch) -> list[PageLines]:
    """Each page's lines, its tables, and OCR of a page without a text layer, one page at a
    time (each page is reported to `watch` when done: a reader stopped later resumes after it)."""
    pymupdf = _mupdf()
    flags = pymupdf.TEXT_MEDIABOX_CLIP | pymupdf.TEXT_DEHYPHENATE | pymupdf.TEXT_PRESERVE_WHITESPACE
    count = doc.page_count
    watch.opened(count)
    tessdata = _tessdata_dir(limits.ocr_language) if limits.ocr else None
    pages: list[PageLines] = []
    ocr_tried = sum(1 for p in watch.resume.values() if p.ocr)
    partly_read = 0  # pages with lines in fonts that could not be decoded, read by OCR
    for pno in range(count):
        if pno in watch.resume:
            pages.append(watch.resume[pno])
            continue
        result = PageLines()
        pages.append(result)
        if watch.stop_at is not None and pno >= watch.stop_at:
            continue  # (recorded once, as a range, below)
        skipped = watch.begin_page(pno)
        if skipped is not None:
            result.unreadable = True
            result.degraded.append(("page", skipped))
            watch.page_done(pno, result)
            continue
        try:
            page = doc.load_page(pno)
            lines = _structured_lines(page, pno, flags, watch, result)
            illegible = bool(lines) and _illegible(" ".join(ln.text for ln in lines))
            if illegible:
                lines = []
            result.lines = lines
            if lines and fmt != "svg":
                try:
                    with watch.step(pno, "tables"):
                        result.tables = _find_tables(page)
                except StepTimeout as exc:
                    result.degraded.append(("tables", str(exc)))
            elif fmt in SCANNABLE and illegible:
                result.no_text = "illegible"
            elif fmt in SCANNABLE and page.get_image_info():
                result.no_text = "image"
            elif fmt in SCANNABLE and len(page.get_drawings()) >= 30:
                result.no_text = "drawing"
            if result.no_text and tessdata is not None and ocr_tried < limits.ocr_max_pages:
                ocr_tried += 1
                _ocr_page(page, pno, limits, tessdata, flags, watch, result)
            elif tessdata is not None and fmt in SCANNABLE and ocr_tried < limits.ocr_max_pages \
                    and _partly_illegible(lines):
                # Some lines in a font that could not be decoded: OCR reads those; the lines
                # that were fine stay as they were (with their sizes: headings, the title).
                ocr_tried += 1
                _ocr_page(page, pno, limits, tessdata, flags, watch, result)
                if result.lines is not lines:
                    result.lines = _with_ocr(lines, result.lines)
                    partly_read += 1
                result.ocr = False  # its decodable lines keep their sizes: headings, the title
        except Exception:
            log.debug("page %d could not be read", pno + 1, exc_info=True)
            result.unreadable = True
        watch.page_done(pno, result)
    if watch.stop_at is not None and watch.stop_at < count:
        watch.note(watch.stop_at, "pages", watch.stop_reason or "not read", count - 1)
    if partly_read:
        warnings.append(f"lines of {partly_read} page(s) in fonts that could not be decoded were"
                        " read by OCR and may contain errors")
    unreadable = sum(p.unreadable for p in pages)
    if unreadable:
        warnings.append(f"{unreadable} page(s) could not be read")
    scanned = [p for p in pages if p.no_text]
    if not scanned:
        return pages
    if tessdata is None:
        reason = (
            "no text layer — install Tesseract to read scanned pages (OCR is not installed)"
            if limits.ocr
            else "no text layer — scanned pages need OCR, which is switched off"
        )
        if not any(p.lines for p in pages):
            raise ExtractionError(reason)
        warnings.append(f"{len(scanned)} page(s) without a text layer were skipped: {reason}")
        return pages
    tried = [p for p in scanned if p.ocr]
    if len(scanned) > len(tried):
        warnings.append(
            f"only {len(tried)} of {len(scanned)} scanned pages were read by OCR"
        )
    read = sum(1 for p in tried if p.lines)
    log.info("OCR read %d of %d scanned page(s)", read, len(tried))
    warnings.append(f"text of {len(tried)} scanned page(s) was read by OCR and may contain errors")
    return pages


def _ocr_page(page: Any, pno: int, limits: Limits, tessdata: str, flags: int, watch: PageWatch,
              result: PageLines) -> None:
    """OCR one page without a text layer, within its budget."""
    started = time.monotonic()
    try:
        with watch.step(pno, "ocr"):
            result.lines = _ocr_lines(page, limits, tessdata, flags)
    except StepTimeout as exc:
        result.degraded.append(("ocr", str(exc)))
    except Exception:
        log.warning("OCR failed on page %d", pno + 1, exc_info=True)
    result.ocr = True
    result.ocr_seconds = time.monotonic() - started
    watch.ocr_seconds += result.ocr_seconds


def _outline(doc: Any, count: int) -> list[tuple[int, str, int]]:
    try:
        toc = doc.get_toc(simple=True)
    except Exception:
        return []
    return [(lvl, title, page) for lvl, title, page in toc if 1 <= page <= count and title.strip()]
