"""The kinds of file RagDesk reads and how they are told apart (by name, then by content), with
the errors and bounds every reader shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragdesk.errors import RagdeskError

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


# Formats read through PyMuPDF: our format name -> PyMuPDF filetype.
MUPDF_FILETYPE = {
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
SCANNABLE = {"pdf", "xps", "cbz"}
ZIP_FORMATS = {"epub", "xps", "cbz", "docx", "xlsx", "pptx", "hwpx"}
LABEL = {
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
    [
        "py", "pyi", "pyx", "pxd", "js", "mjs", "cjs", "jsx", "ts", "tsx", "c", "h", "cc", "cpp", "cxx",
        "hpp", "hh", "hxx", "cs", "java", "kt", "kts", "scala", "go", "rs", "rb", "php", "pl", "pm",
        "swift", "m", "mm", "r", "jl", "lua", "sh", "bash", "zsh", "fish", "ps1", "psm1", "bat", "cmd",
        "sql", "yaml", "yml", "toml", "ini", "cfg", "conf", "properties", "xml", "xsd", "xsl", "gradle",
        "cmake", "mk", "css", "scss", "sass", "less", "vue", "svelte", "dart", "ex", "exs", "erl",
        "hrl", "hs", "ml", "mli", "clj", "cljs", "groovy", "tf", "hcl", "proto", "graphql", "gql", "f",
        "f90", "f95", "for", "pas", "asm", "s", "v", "sv", "vhd", "vhdl", "tcl", "el", "lisp", "scm",
        "rkt", "nim", "zig",
    ]
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


def extension(path: Path) -> str:
    return path.suffix.lower().lstrip(".")


def format_by_name(path: Path) -> str | None:
    """The format a file's name suggests (None if RagDesk does not read such names); the
    content may still say otherwise (see detect_format)."""
    ext = extension(path)
    if ext:
        return _EXTENSIONS.get(ext)
    return _BARE_NAMES.get(path.name.lower())


def supported_extensions() -> list[str]:
    """The file name extensions RagDesk reads (lower case, sorted), e.g. for a file dialog's
    filter; files commonly named without one (README, Makefile) are read too."""
    return sorted(_EXTENSIONS)


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
    ext = extension(path)
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


def too_big(limits: Limits) -> str:
    """The reason given for a file over `limits.max_file_bytes`."""
    n = limits.max_file_bytes
    size = f"{n // MB} MB" if n >= MB and n % MB == 0 else f"{n:,} bytes"
    return f"file is larger than the {size} limit"
