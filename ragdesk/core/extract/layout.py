"""From the lines PyMuPDF read to pages and blocks: which lines are headings (from the document's
outline when it matches the text, otherwise from font size and weight), how lines group into
paragraphs, lists, code and tables, and the cover title (the largest type on the first page)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from ragdesk.core.extract.text import CJK, LIST_MARK
from ragdesk.core.records import Block, Page


@dataclass
class Line:
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
class PageLines:
    lines: list[Line] = field(default_factory=list)
    tables: list[tuple[tuple[float, float, float, float], str]] = field(default_factory=list)
    ocr: bool = False
    no_text: str = ""  # why a page with no usable text was given to OCR: image | drawing | illegible
    degraded: list[tuple[str, str]] = field(default_factory=list)  # (step, reason) not done here
    unreadable: bool = False  # MuPDF could not read the page at all
    ocr_seconds: float = 0.0


def _norm_key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def _inside(bbox: tuple[float, ...], area: tuple[float, ...]) -> bool:
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    return area[0] - 1 <= cx <= area[2] + 1 and area[1] - 1 <= cy <= area[3] + 1


def _match_outline(pages: list[PageLines], outline: list[tuple[int, str, int]]) -> int:
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


def cover_title(pages: list[PageLines], body_size: float) -> str:
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
    title = "\n".join(" ".join(line.split()) for line in picked)  # a line may be a page number
    return title if _headingish(title, 200) and len(picked) <= 3 else ""


def assign_headings(pages: list[PageLines], outline: list[tuple[int, str, int]]) -> float:
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


_WORDISH = re.compile(rf"[^\W\d_]{{3,}}|[{CJK}]")


def _headingish(text: str, max_len: int) -> bool:
    """Short, and with a real word in it (not a page number, roman numeral or bullet)."""
    return 2 <= len(text) <= max_len and bool(_WORDISH.search(text))


def layout(pages: list[PageLines]) -> tuple[list[Page], list[Block]]:
    """Build each page's text and its blocks: groups of lines with the same role and source."""
    out_pages: list[Page] = []
    blocks: list[Block] = []
    for pno, page in enumerate(pages, start=1):
        items: list[tuple[str, int, str]] = []  # (kind, level, text)
        pending_tables = list(page.tables)
        placed: set[int] = set()
        group: list[Line] = []
        for ln in page.lines:
            table_at = next(
                (k for k, (bbox, _) in enumerate(pending_tables) if _inside(ln.bbox, bbox)), None
            )
            if table_at is not None:
                if table_at not in placed:
                    _flush(group, items)
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
                    _flush(group, items)
            group.append(ln)
        _flush(group, items)
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


def _flush(group: list[Line], items: list[tuple[str, int, str]]) -> None:
    """Close a group of lines as one item (kind, level, text), and empty it."""
    if not group:
        return
    first = group[0]
    if first.role == "heading":
        kind = "heading"
    elif first.role == "code":
        kind = "code"
    elif LIST_MARK.match(first.text):
        kind = "list"
    else:
        kind = "paragraph"
    items.append((kind, first.level, _join_lines([ln.text for ln in group])))
    group.clear()


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
