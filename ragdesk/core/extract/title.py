"""Which title a document shows: its metadata title when that is a real title, else its first
heading, else its file name without the extension.

Producers fill metadata titles with junk ("Title", "none", "Microsoft Word - report.doc", the
file's own name, a path, mis-decoded bytes), and layout analysis can take a page number or a
sentence for a heading; `meaningful_title` recognises such strings so that `choose_title` can
pass over them. Every reader calls `choose_title`, so all formats follow the same rules."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import PurePath

from ragdesk.core.records import Block, Page

MAX_TITLE = 200  # characters; longer titles are cut at a word boundary

_EXTENSIONS = (
    "indd|eps|docx?|dotx?|pdf|tex|dvi|qxd|qxp|pages|rtf|txt|md|ps|ai|xlsx?|pptx?|odt|ods|odp|html?|"
    "cdr|pub|wpd|fm|key|numbers|epub|mobi|xps|hwpx?|jpe?g|png|tiff?|psd|csv"
)
_EXTENSION = re.compile(rf"\.(?:{_EXTENSIONS})$", re.I)
_OFFICE_PREFIX = re.compile(r"^Microsoft\s+(?:Word|PowerPoint|Excel|Visio)\s*[-–—]\s*", re.I)
_PLACEHOLDER = re.compile(
    r"^(?:(?:document|new document|untitled|untitled document|no title|title|document title|"
    r"none|null|nil|unknown|default|n/?a|empty|blank|draft|template|"
    r"(?:microsoft )?(?:word|powerpoint|excel) (?:document|presentation|worksheet)|"
    r"presentation|powerpoint presentation|slide|page|sheet|book|workbook|chapter|cover|"
    r"title page|pdf|print|doc|docx|file)"
    r"(?:[\s#_-]*\d+)?|(?:document|doc|presentation|book|sheet|slide|page|untitled|chapter)"
    r"[\s#_-]*\d+)$"
)
# Section names a document's first heading may be, but that never name the document itself.
_SECTION_NAME = re.compile(
    r"^(?:\d+(?:\.\d+)*\.?\s+)?(?:(?:table of )?contents|index|abstract|summary|preface|foreword|"
    r"introduction|acknowledge?ments?|references|bibliography|appendix(?: [a-z\d]+)?|notes|"
    r"glossary|overview)$"
)
_URL = re.compile(r"^(?:[a-z][a-z\d+.-]*://|www\.)\S*$", re.I)
_PATH = re.compile(r"^(?:[a-z]:[\\/]|[\\/~]|\.{1,2}[\\/])|[\\/]\S*[\\/]", re.I)
_MOJIBAKE = re.compile(r"[ÃÂâ][^\x00-\x7f]")  # the lead byte of UTF-8 read as cp1252
_EDGE_PUNCT = " \t-–—|·•:;,/\\*#=~"  # trimmed from both ends of a title
_QUOTES = {'"': '"', "'": "'", "“": "”", "„": "“", "«": "»", "»": "«", "‘": "’"}


def _repair_mojibake(text: str) -> str:
    """UTF-8 read as cp1252/Latin-1 ("CafÃ©") is put right when it round-trips cleanly."""
    if not _MOJIBAKE.search(text):
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def _garbled(text: str) -> bool:
    """Replacement, control or private-use characters: the bytes were not decoded as meant."""
    return any(
        c == "\ufffd" or unicodedata.category(c) in ("Cc", "Co", "Cs") for c in text if c not in "\t\n"
    )


def _cut(text: str, limit: int = MAX_TITLE) -> str:
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    if space >= limit // 2:
        head = head[:space]
    return head.rstrip(_EDGE_PUNCT) + "…"


def meaningful_title(text: str, file_name: str = "") -> str:
    """``text`` tidied up as a title, or "" when a reader would not want it as one.

    Rejected: empty text, placeholders ("Title", "untitled", "none", "Document1", "Slide 1"),
    the file's own name, any file name or path or URL, mis-decoded text, text with fewer than
    three letters or made mostly of symbols. "Microsoft Word - x" keeps only "x" (and judges
    that). Whitespace is collapsed and titles longer than MAX_TITLE are cut at a word.
    """
    text = _repair_mojibake(text.replace("\x00", ""))
    if _garbled(text):
        return ""
    text = " ".join(text.split()).strip(_EDGE_PUNCT)
    prefix = _OFFICE_PREFIX.match(text)
    if prefix:
        text = text[prefix.end() :]
    text = _EXTENSION.sub("", text) if prefix else text
    text = text.strip(_EDGE_PUNCT)
    if len(text) > 2 and _QUOTES.get(text[0]) == text[-1]:  # "Hamlet" but not Plan "B"
        text = text[1:-1].strip(_EDGE_PUNCT)
    if not text or _EXTENSION.search(text) or _URL.match(text) or _PATH.search(text):
        return ""
    if " " not in text and "_" in text:  # an identifier such as "RUBRIK_Editorial_01-06"
        return ""
    folded = text.casefold()
    # The file's own name (its stem, which is also the last resort, may stand: "Guide" for
    # guide.md reads better than "guide").
    if file_name and folded == PurePath(file_name).name.casefold():
        return ""
    if _PLACEHOLDER.match(folded):
        return ""
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters < 3 or sum(c.isalnum() for c in visible) < 0.6 * len(visible):
        return ""
    return _cut(text)


def _body_text(heading: str) -> bool:
    """Not a heading at all: a sentence set large, or a line without a word (a page number)."""
    title = " ".join(ln for ln in heading.splitlines() if sum(c.isalpha() for c in ln) >= 2)
    words = title.split()
    return not words or (title.endswith(".") and len(words) >= 5 and not title.endswith(".."))


def heading_title(text: str, file_name: str = "") -> str:
    """A heading as a document title, or "": like `meaningful_title`, and further lines without
    letters (a page number or ornament set with the heading) are dropped, and a section name
    ("Contents", "1 Introduction") or a sentence taken for a heading is rejected."""
    if _body_text(text):
        return ""
    lines = [ln for ln in text.splitlines() if sum(c.isalpha() for c in ln) >= 2]
    title = meaningful_title(" ".join(lines), file_name)
    return "" if _SECTION_NAME.match(title.casefold()) else title


def lead_headings(pages: list[Page], blocks: list[Block], within: int = 3) -> list[str]:
    """The headings of the first page that has any (if it is one of the first ``within`` pages),
    in reading order: the candidates for the document's first heading.

    A kicker -- a short heading in capitals ("EDITORIAL", "RESEARCH ARTICLE") set above a more
    prominent heading on the same page -- labels the headline, so it moves after the others.
    A heading first met deep in a document is a section, not the document's title.
    """
    heads = [b for b in blocks if b.kind == "heading"]
    if not heads or heads[0].page > within:
        return []
    first = [b for b in heads if b.page == heads[0].page]
    texts = [pages[b.page - 1].text[b.start : b.end] for b in first]

    def kicker(i: int) -> bool:
        words = texts[i].split()
        return (
            len(words) <= 3
            and texts[i] == texts[i].upper()
            and any(b.level and b.level < (first[i].level or 99) for b in first[i + 1 :])
        )

    order = sorted(range(len(first)), key=lambda i: (kicker(i), i))
    return [texts[i] for i in order]


def file_title(file_name: str) -> str:
    """The file name without its extension, as the user wrote it (recognisable in a file
    manager; keyword search splits it at "_" and "-" anyway)."""
    path = PurePath(file_name)
    return path.stem or path.name


def choose_title(metadata: str, headings: Iterable[str], file_name: str) -> str:
    """The title a document shows: ``metadata`` if meaningful, else the first heading if that
    is meaningful, else the file name without its extension.

    ``headings`` are the candidates for the first heading, in order; those that are not
    headings at all (empty, a sentence set large) are passed over. If the first real heading is
    not a title ("Title", "Contents", "test_book_epub"), the next ones are sections, so the file
    name is taken instead.
    """
    title = meaningful_title(metadata, file_name)
    if title:
        return title
    for heading in headings:
        if not _body_text(heading):
            return heading_title(heading, file_name) or file_title(file_name)
    return file_title(file_name)
