"""Turn one file into text with page and section positions: ``extract(path) -> Extracted``.

One reader per format family, each in its own module:

* `mupdf` (with `layout` and `zipsafe`): PyMuPDF documents (PDF, EPUB, XPS/OXPS, MOBI, FB2, CBZ,
  SVG, HTML/XHTML and the Office formats this MuPDF build reads: DOCX, XLSX, PPTX, HWPX).
  Headings come from the document's outline when it has one that matches the page text,
  otherwise from font size and weight; ruled tables are kept as one block of rows. Pages
  without a text layer are read by Tesseract OCR when it is installed.
* `fb2`: FB2 checked with expat first (MuPDF's FB2 reader crashes on broken XML structure).
* `text`: plain text, Markdown, source code, CSV/TSV, JSON/JSON Lines; `mail`: e-mail (.eml).
* `budget`: time budgets for each page's optional steps (layout, tables, OCR) and the
  `PageWatch` through which a reader is bounded, followed and resumed.
* `formats`: which format a file is (by name, then by its first bytes), the shared errors and
  `Limits`.

Every failure a user can cause -- an empty, corrupt, encrypted, oversized, binary or unsupported
file -- raises :class:`ExtractionError` (or :class:`UnsupportedFormat`) whose message is a short
reason meant for that user. PyMuPDF is not thread-safe: call ``extract`` from one thread at a
time (the indexer's worker).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ragdesk.core.extract.budget import DegradedPage, PageWatch, StepBudget, StepTimeout
from ragdesk.core.extract.fb2 import check_fb2
from ragdesk.core.extract.formats import (
    LABEL,
    MB,
    MUPDF_FILETYPE,
    PLAIN_FORMATS,
    ExtractionError,
    Limits,
    UnsupportedFormat,
    detect_format,
    format_by_name,
    supported,
    too_big,
)
from ragdesk.core.extract.html import html_to_text
from ragdesk.core.extract.mail import extract_email
from ragdesk.core.extract.mupdf import extract_mupdf, ocr_available
from ragdesk.core.extract.text import (
    decode_text,
    extract_code,
    extract_csv,
    extract_json,
    extract_markdown,
    extract_plain,
)
from ragdesk.core.extract.zipsafe import zip_format
from ragdesk.core.records import Extracted

__all__ = [
    "MB",
    "PLAIN_FORMATS",
    "DegradedPage",
    "ExtractionError",
    "Limits",
    "PageWatch",
    "StepBudget",
    "StepTimeout",
    "UnsupportedFormat",
    "decode_text",
    "detect_format",
    "extract",
    "format_by_name",
    "html_to_text",
    "ocr_available",
    "supported",
    "too_big",
]

log = logging.getLogger("ragdesk.extract")

_TEXT_READERS: dict[str, Callable[[bytes, Path, list[str]], Extracted]] = {
    "text": extract_plain,
    "markdown": extract_markdown,
    "code": extract_code,
    "csv": extract_csv,
    "json": extract_json,
    "email": extract_email,
}


_DEFAULT_LIMITS = Limits()


def extract(path: Path, data: bytes | None = None, limits: Limits = _DEFAULT_LIMITS,
            watch: PageWatch | None = None) -> Extracted:
    """Read one file into pages of text and structural blocks.

    ``data`` is the file's content when the caller has already read it (the indexer reads once
    and hashes); otherwise the file is read here, after its size is checked against the limit.
    ``watch`` bounds the optional work on each page of a paged document and collects the pages
    that lost some of it (see budget.py); by default every step runs to its end.
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
        fmt = zip_format(data)
    warnings: list[str] = []
    try:
        if fmt in MUPDF_FILETYPE:
            if fmt == "fb2":
                check_fb2(data)  # broken XML crashes MuPDF's FB2 reader
            result = extract_mupdf(data, fmt, path, limits, warnings, watch)
        else:
            result = _TEXT_READERS[fmt](data, path, warnings)
    except ExtractionError:
        raise
    except MemoryError:
        raise ExtractionError("not enough memory to read this file") from None
    except Exception as exc:  # parsers fail in many ways on hostile input; the batch goes on
        log.warning("could not read %s (%s)", path.name, fmt, exc_info=True)
        raise ExtractionError(f"corrupt or unreadable {LABEL.get(fmt, fmt)} file") from exc
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


def _no_text_reason(fmt: str) -> str:
    if fmt in ("svg", "cbz"):
        return "no text found (the file holds only drawings or images)"
    return "no text found in the document"
