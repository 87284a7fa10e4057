"""Cut an extracted document into chunks for search: ``chunk(Extracted) -> list[ChunkDraft]``.

Pure, deterministic functions, no I/O. The rules:

* Headings start a new chunk and make the heading path (``"Chapter > Section"``); a heading's own
  text opens the chunk that follows it. A heading with no text under it (another heading
  follows, or only a section number) makes no chunk of its own: it lives on in the heading path.
* Paragraphs, lists and code are packed into a chunk up to ``max_tokens``; tables are kept whole
  when they fit, otherwise cut by rows with the header row (a table block's first line) repeated
  on top of every piece. Over-long paragraphs are cut at sentence ends, then between words (CJK:
  between characters).
* Consecutive chunks of one section overlap by up to ``overlap_tokens`` of whole sentences.
* Lines that recur on at least half of the pages of a document of three or more pages (running
  headers and footers, page numbers, "Confidential" banners; digits are ignored when comparing)
  are left out of chunk text -- not out of page text. A chunk whose normalised text repeats an
  earlier chunk of the same document is dropped.

``count_tokens`` is called about once per block, plus once per sentence/row of blocks that must
be cut and per sentence taken as overlap -- never per word.

What the offsets guarantee: each line of ``ChunkDraft.text`` with all whitespace removed is a
substring of the source range -- the text of ``page_start`` from ``char_start``, through the
pages between, to ``char_end`` on ``page_end`` -- with all whitespace removed. The one exception
is the header row repeated on top of a split table's later pieces, which is that table's first
line. Chunk text itself is whitespace-normalised: runs of spaces and soft line breaks inside a
paragraph become one space (none between two CJK characters), blocks are separated by a blank
line, table and code rows keep their line breaks.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import PurePath

from ragdesk.core.extract.garbage import is_garbage
from ragdesk.core.extract.text import CJK as _CJK
from ragdesk.core.extract.title import meaningful_title
from ragdesk.core.records import Block, ChunkDraft, Extracted
from ragdesk.core.store.keyword import number_words

TokenCounter = Callable[[str], int]

_CJK_CHAR = re.compile(f"[{_CJK}]")
_HANGUL = re.compile("[\uac00-\ud7af]")
_DIGIT_RUN = re.compile(r"\d+")
_LETTER_RUN = re.compile(f"[^\\W\\d_{_CJK}\uac00-\ud7af]+")
_PUNCT = re.compile(f"[^\\w\\s{_CJK}]|_")
_ASCII_RUN = re.compile("[A-Za-z]+")


def estimate_tokens(text: str) -> int:
    """A cheap stand-in for a BERT word-piece count (all-MiniLM-L6-v2's tokenizer).

    Calibrated on the test corpus against the real tokenizer: it errs on the high side by about
    10% for English prose (95% of chunks within 5% above the estimate; code and German run
    higher). Short words are one piece, long or accented words several, digits about three per
    piece, punctuation one each. CJK text has no spaces: every Han/Kana character is one piece; a
    Hangul syllable splits into its letters (about three pieces). Runs in C-level regex scans
    plus one cheap step per word (about 1 µs per word).
    """
    if text.isascii():  # the common case: skip the CJK scans
        n = len(_PUNCT.findall(text))
        words = _ASCII_RUN.findall(text)
    else:
        n = len(_CJK_CHAR.findall(text)) + 3 * len(_HANGUL.findall(text))
        n += len(_PUNCT.findall(text))
        words = _LETTER_RUN.findall(text)
    n += sum((len(d) + 2) // 3 for d in _DIGIT_RUN.findall(text))
    for word in words:
        size = len(word)
        if size <= 6 and word.isascii():
            n += 1
        elif word.isascii():
            n += -(-size // 4)
        else:
            n += -(-size * 2 // 5)  # ceil(size / 2.5)
    return n


# --- boilerplate ------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+")
_EDGE_LINES = 3  # running headers and footers live this close to a page's top or bottom
_EDGE_NUMBERS = 2  # ... and page numbers (lines without a letter) this close


def _line_key(line: str, index: int, count: int) -> str | None:
    """How a page's ``index``-th of ``count`` lines is compared across pages, or None if never.

    Near the top or bottom of a page digits are ignored ("Page 3 of 9" matches "Page 4 of 9")
    but the line's place counts (second from the bottom matches only second from the bottom);
    elsewhere a line must recur exactly (case and spacing aside), so that body lines that differ
    only in their numbers are never taken for boilerplate. Lines without a letter (page numbers)
    count only right at the edge, so numbers in the body of a page never vanish.
    """
    key = " ".join(line.casefold().split())
    if not key or len(key) > 120:
        return None
    top, bottom = index, count - 1 - index
    place = f"^{top}" if top <= bottom else f"${bottom}"
    edge = min(top, bottom)
    if not any(c.isalpha() for c in key):
        return f"{place} {_DIGITS.sub('#', key)}" if edge < _EDGE_NUMBERS else None
    if edge < _EDGE_LINES and _DIGITS.search(key):
        return f"{place} {_DIGITS.sub('#', key)}"
    return key


def find_boilerplate(doc: Extracted, min_pages: int = 3, share: float = 0.5) -> frozenset[str]:
    """Keys (see ``_line_key``) of lines that recur on at least ``share`` of the pages.

    Only documents with ``min_pages`` pages of text or more are considered.
    """
    pages = [p for p in doc.pages if p.text.strip()]
    if len(pages) < min_pages:
        return frozenset()
    seen: dict[str, int] = {}
    for page in pages:
        lines = [ln for ln in page.text.split("\n") if ln.strip()]
        keys = {_line_key(line, i, len(lines)) for i, line in enumerate(lines)}
        for key in keys:
            if key is not None:
                seen[key] = seen.get(key, 0) + 1
    needed = max(min_pages, math.ceil(share * len(pages)))
    return frozenset(k for k, n in seen.items() if n >= needed)


# --- spans ------------------------------------------------------------------------------------

_PROSE = {"paragraph", "heading"}


@dataclass
class _Span:
    """A contiguous piece of one page's text and its normalised form."""

    page: int
    start: int
    end: int
    text: str
    tokens: int
    kind: str
    block: int  # ordinal of the source block (and segment) -- spans of one join with a space
    whole: bool = True  # a whole block segment (can still be cut into sentences for overlap)
    table_header: str = ""  # set on table pieces whose first line repeats the header row


_CJK_JOIN = re.compile(rf"(?<=[{_CJK}])\s*\n\s*(?=[{_CJK}])")
_SPACES = re.compile(r"[^\S\n]+")


def _normalise(text: str, kind: str) -> str:
    if kind in _PROSE:
        text = _CJK_JOIN.sub("", text)
        return " ".join(text.split())
    if kind == "code":
        lines = (ln.rstrip() for ln in text.split("\n"))
    else:
        lines = (_SPACES.sub(" ", ln).strip() for ln in text.split("\n"))
    return "\n".join(ln for ln in lines if ln.strip())


_LINE = re.compile(r"[^\n]+")


def _segments(
    page_text: str, block: Block, boilerplate: frozenset[str], page_lines: int, first_line: int
) -> list[tuple[int, int]]:
    """The block's line ranges left after dropping boilerplate lines: runs of kept lines."""
    if not boilerplate:
        return [(block.start, block.end)]
    segments: list[tuple[int, int]] = []
    run: tuple[int, int] | None = None
    line_no = first_line
    for m in _LINE.finditer(page_text, block.start, block.end):
        line = m.group().strip()
        if not line:
            continue
        key = _line_key(line, line_no, page_lines)
        line_no += 1
        if key is not None and key in boilerplate:
            if run:
                segments.append(run)
                run = None
            continue
        run = (run[0], m.end()) if run else (m.start(), m.end())
    if run:
        segments.append(run)
    return segments


def _blocks(doc: Extracted) -> list[Block]:
    """The document's blocks in reading order, clamped to the page text; derived if missing."""
    texts = {p.number: p.text for p in doc.pages}
    blocks = [b for b in doc.blocks if b.page in texts]
    covered = {b.page for b in blocks}
    for page in doc.pages:
        if page.number not in covered and page.text.strip():
            blocks += _paragraphs(page.number, page.text)
    order = {p.number: i for i, p in enumerate(doc.pages)}
    out = []
    for b in sorted(blocks, key=lambda b: (order[b.page], b.start, b.end)):
        start, end = max(0, b.start), min(len(texts[b.page]), b.end)
        if start < end:
            if (start, end) != (b.start, b.end):
                b = Block(b.page, start, end, b.kind, b.level)
            out.append(b)
    return out


def _paragraphs(page: int, text: str) -> list[Block]:
    blocks = []
    for m in re.finditer(r"\S(?:.*?\S)?(?=\n[ \t]*\n|\s*$)", text, re.S):
        blocks.append(Block(page, m.start(), m.end(), "paragraph", 0))
    return blocks


# --- cutting ----------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|[。！？；]+[」』”’）]*")
_WORDS = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")


def _pieces(text: str, start: int, end: int, pattern: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """Ranges of ``text[start:end]`` cut after each match of ``pattern`` (whitespace trimmed)."""
    pos = start
    for m in pattern.finditer(text, start, end):
        yield from _trimmed(text, pos, m.end())
        pos = m.end()
    yield from _trimmed(text, pos, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    seg = text[start:end]
    stripped = seg.strip()
    if stripped:
        s = start + len(seg) - len(seg.lstrip())
        yield s, s + len(stripped)


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return list(_pieces(text, start, end, _SENTENCE_END))


def _lines(text: str, start: int, end: int) -> list[tuple[int, int]]:
    return [r for m in _LINE.finditer(text, start, end) for r in _trimmed(text, m.start(), m.end())]


class _Chunker:
    def __init__(self, doc: Extracted, max_tokens: int, overlap: int, count: TokenCounter) -> None:
        self.doc = doc
        self.texts = {p.number: p.text for p in doc.pages}
        self.max = max_tokens
        self.overlap = overlap
        self.count = count
        self.out: list[ChunkDraft] = []
        self.seen: set[bytes] = set()
        self.cur: list[_Span] = []
        self.cur_tokens = 0
        self.cur_overlap = 0  # how many spans at the start of cur are overlap
        self.heading = ""
        self.last_level = 0

    # -- building spans --

    def span(
        self, page: int, start: int, end: int, kind: str, block: int, whole: bool
    ) -> _Span | None:
        text = _normalise(self.texts[page][start:end], kind)
        if not text or is_garbage(text):  # undecodable characters: never a hit
            return None
        return _Span(page, start, end, text, self.count(text), kind, block, whole)

    def fit(self, sp: _Span) -> list[_Span]:
        """``sp`` itself if it fits the bound, else the pieces it is cut into."""
        if sp.tokens <= self.max:
            return [sp]
        if sp.kind == "table":
            return self.cut_table(sp)
        page_text = self.texts[sp.page]
        if sp.kind in _PROSE:
            ranges = _sentences(page_text, sp.start, sp.end)
            if len(ranges) <= 1:  # no sentence ends (a log, a list without marks): use lines
                ranges = _lines(page_text, sp.start, sp.end)
            kind = sp.kind
        else:
            ranges = _lines(page_text, sp.start, sp.end)
            kind = sp.kind
        if len(ranges) <= 1:
            return self.cut_words(sp)
        units: list[_Span] = []
        for s, e in ranges:
            piece = self.span(sp.page, s, e, kind, sp.block, whole=False)
            if piece is not None:
                units += [piece] if piece.tokens <= self.max else self.cut_words(piece)
        if sp.kind in _PROSE:
            return units
        return self.regroup(units, sp)

    def regroup(self, units: list[_Span], sp: _Span) -> list[_Span]:
        """Lines of code/lists packed back into as few spans as fit (one line each is wasteful)."""
        out: list[_Span] = []
        group: list[_Span] = []
        total = 0

        def close() -> None:
            if group:
                text = "\n".join(g.text for g in group)
                start, end = group[0].start, group[-1].end
                out.append(_Span(sp.page, start, end, text, total, sp.kind, sp.block, False))

        for u in units:
            if group and total + u.tokens > self.max:
                close()
                group, total = [], 0
            group.append(u)
            total += u.tokens
        close()
        return out

    def cut_table(self, sp: _Span) -> list[_Span]:
        page_text = self.texts[sp.page]
        rows = [
            r
            for r in (
                self.span(sp.page, s, e, "table", sp.block, whole=False)
                for s, e in _lines(page_text, sp.start, sp.end)
            )
            if r is not None
        ]
        if len(rows) <= 1:
            return self.cut_words(sp)
        header, body = rows[0], rows[1:]
        if header.tokens > self.max // 2:  # a monster header row: not worth repeating
            header = _Span(sp.page, header.start, header.start, "", 0, "table", sp.block, False)
            body = rows
        out: list[_Span] = []
        group: list[_Span] = [header] if header.text else []
        total = header.tokens
        for row in body:
            if row.tokens + header.tokens > self.max:  # a single row too long even alone
                if len(group) > (1 if header.text and not out else 0):
                    out.append(self.table_piece(group, total, header, sp, first=not out))
                out += self.cut_words(row)
                group, total = ([header] if header.text else []), header.tokens
                continue
            if total + row.tokens > self.max and any(g is not header for g in group):
                out.append(self.table_piece(group, total, header, sp, first=not out))
                group, total = ([header] if header.text else []), header.tokens
            group.append(row)
            total += row.tokens
        if any(g is not header for g in group):
            out.append(self.table_piece(group, total, header, sp, first=not out))
        return out

    def table_piece(
        self, group: list[_Span], total: int, header: _Span, sp: _Span, first: bool
    ) -> _Span:
        rows = [g for g in group if g is not header]
        repeated = bool(header.text) and not first
        start = header.start if (first and header.text) else rows[0].start
        text = "\n".join(([header.text] if header.text else []) + [r.text for r in rows])
        return _Span(
            sp.page, start, rows[-1].end, text, total, "table", sp.block, False,
            table_header=header.text if repeated else "",
        )

    def cut_words(self, sp: _Span) -> list[_Span]:
        """Cut between words (CJK: characters), sized by the span's tokens-per-word ratio."""
        page_text = self.texts[sp.page]
        words = [(m.start(), m.end()) for m in _WORDS.finditer(page_text, sp.start, sp.end)]
        if len(words) <= 1:
            return self.cut_chars(sp)
        per_word = max(sp.tokens / len(words), 1e-6)
        out: list[_Span] = []
        i = 0
        kind = "paragraph" if sp.kind in _PROSE or sp.kind == "table" else sp.kind
        while i < len(words):
            take = max(1, int(self.max / per_word * 0.9))
            while True:
                j = min(len(words), i + take)
                piece = self.span(sp.page, words[i][0], words[j - 1][1], kind, sp.block, False)
                if piece is None or piece.tokens <= self.max or take == 1:
                    break
                take = max(1, int(take * self.max / piece.tokens * 0.9))
            if piece is not None:
                out += [piece] if piece.tokens <= self.max else self.cut_chars(piece)
            i = j
        return out

    def cut_chars(self, sp: _Span) -> list[_Span]:
        """Last resort for one enormous 'word' (a base64 blob, a URL list without spaces)."""
        parts = max(2, math.ceil(sp.tokens / self.max) + 1)
        step = max(1, math.ceil((sp.end - sp.start) / parts))
        out = []
        for s in range(sp.start, sp.end, step):
            piece = self.span(sp.page, s, min(sp.end, s + step), "code", sp.block, False)
            if piece is not None:
                # cannot cut further; the embedder truncates what is left over
                piece.tokens = min(piece.tokens, self.max)
                out.append(piece)
        return out

    # -- packing --

    def add(self, sp: _Span) -> None:
        if self.cur and self.cur_tokens + sp.tokens > self.max:
            tail = self.tail() if self.overlap else []
            self.flush()
            while tail and sum(t.tokens for t in tail) + sp.tokens > self.max:
                tail.pop(0)
            self.cur = tail
            self.cur_overlap = len(tail)
            self.cur_tokens = sum(t.tokens for t in tail)
        self.cur.append(sp)
        self.cur_tokens += sp.tokens

    def tail(self) -> list[_Span]:
        """The last sentences of the current chunk, up to the overlap budget, for the next one."""
        picked: list[_Span] = []
        budget = self.overlap
        for sp in reversed(self.cur):
            if sp.kind != "paragraph":
                break
            if sp.whole:
                ranges = _sentences(self.texts[sp.page], sp.start, sp.end)
                for s, e in reversed(ranges):  # counted lazily: stop at the first that fails
                    if (e - s) > budget * 12:  # far too long to fit; do not even count it
                        return picked
                    u = self.span(sp.page, s, e, sp.kind, sp.block, False)
                    if u is None:
                        continue
                    if u.tokens > budget:
                        return picked
                    picked.insert(0, u)
                    budget -= u.tokens
                if len(ranges) != 1:
                    return picked  # do not reach past the start of a paragraph into the one before
                continue
            if sp.tokens > budget:
                return picked
            picked.insert(0, sp)
            budget -= sp.tokens
        return picked

    def flush(self, next_heading_level: int = 0) -> None:
        spans, overlap = self.cur, self.cur_overlap
        self.cur, self.cur_tokens, self.cur_overlap = [], 0, 0
        if not spans:
            return
        if all(s.kind == "heading" or not any(c.isalpha() for c in s.text) for s in spans) \
                and (next_heading_level or self.out):
            # Headings (and section numbers) with no text of their own: they live on in the
            # heading path of what follows; as a chunk they were scraps ("Usage 12.3.1") that
            # outranked the section they name. (A document of nothing but headings keeps one.)
            return
        parts: list[str] = []
        breaks: list[tuple[int, int]] = []
        length = 0
        prev: _Span | None = None
        for sp in spans:
            if prev is not None:
                sep = (" " if sp.kind in _PROSE else "\n") if sp.block == prev.block else "\n\n"
                parts.append(sep)
                length += len(sep)
                if sp.page != prev.page:
                    breaks.append((length, sp.page))
            parts.append(sp.text)
            length += len(sp.text)
            prev = sp
        joined = "".join(parts)
        text = joined.strip()
        if not text:
            return
        lead = len(joined) - len(joined.lstrip())
        # Duplicates are judged on the chunk's own content: the overlap carried over from the
        # previous chunk would make a repeated block look new.
        own = " ".join(sp.text for sp in spans[overlap:])
        key = hashlib.blake2b(
            " ".join(re.sub(r"[\W_]+", " ", own.casefold()).split()).encode(), digest_size=16
        ).digest()
        if key in self.seen:
            return
        self.seen.add(key)
        first, last = spans[0], spans[-1]
        self.out.append(
            ChunkDraft(
                text=text,
                page_start=first.page,
                page_end=last.page,
                char_start=first.start,
                char_end=last.end,
                heading=self.heading,
                page_breaks=tuple((max(0, at - lead), page) for at, page in breaks),
            )
        )

    def run(self) -> list[ChunkDraft]:
        boilerplate = find_boilerplate(self.doc)
        blocks = _blocks(self.doc)
        line_counts = {
            n: sum(1 for ln in t.split("\n") if ln.strip()) for n, t in self.texts.items()
        }
        stack: list[tuple[int, str]] = []
        ordinal = 0
        cursor: dict[int, tuple[int, int]] = {}  # page -> (offset, non-empty lines before it)
        for block in blocks:
            page_text = self.texts[block.page]
            first_line = 0
            if boilerplate:  # where the block starts, in lines, counted incrementally
                pos, lines = cursor.get(block.page, (0, 0))
                if block.start > pos:
                    found = _LINE.finditer(page_text, pos, block.start)
                    lines += sum(1 for m in found if m.group().strip())
                    pos = block.start
                cursor[block.page] = (pos, lines)
                first_line = lines
            segments = _segments(page_text, block, boilerplate, line_counts[block.page], first_line)
            if block.kind == "heading":
                spans = [
                    s
                    for s in (
                        self.span(block.page, a, b, "heading", ordinal, True) for a, b in segments
                    )
                    if s is not None
                ]
                ordinal += 1
                if not spans:
                    continue
                level = max(1, block.level or 1)
                self.flush(next_heading_level=level)
                title = " ".join(s.text for s in spans)
                while stack and stack[-1][0] >= level:
                    stack.pop()
                stack.append((level, title[:200]))
                self.heading = " > ".join(t for _, t in stack)
                self.last_level = level
                for sp in spans:
                    for piece in self.fit(sp):
                        self.add(piece)
                continue
            kind = block.kind if block.kind in ("table", "code", "list") else "paragraph"
            for a, b in segments:
                part = self.span(block.page, a, b, kind, ordinal, True)
                ordinal += 1
                if part is None:
                    continue
                for piece in self.fit(part):
                    self.add(piece)
        self.flush()
        return self.out


def search_context(title: str, draft: ChunkDraft, file_name: str = "") -> str:
    """What a chunk is searched with besides its text, never shown. Line one (read by the
    embedder too): its document's title and heading path ("MuPDF v1.10 Changes › Pixmap"),
    leaving out placeholder headings ("Title", "untitled"), a title that is only the file's name
    ("doc-1000", "scan_0001": on CACM its words cost 0.007 nDCG@10 and gained nothing on docqa,
    benchmarks/RESULTS.md) and what the chunk's text already opens with (a one-chunk note whose
    first line is its title gains nothing). Line two (keyword search only): the joined forms of
    the versions and standard numbers in all of it (keyword.number_words)."""
    opening = [" ".join(line.split()).casefold() for line in draft.text.split("\n", 3)[:3]]
    named = " ".join(re.sub(r"[_]+", " ", title).split())
    from_file = bool(file_name) and title == PurePath(file_name).stem
    parts: list[str] = []
    for part in ("" if from_file else named, *(meaningful_title(h) for h in draft.heading.split(" > "))):
        folded = part.casefold()
        shown = any(re.match(re.escape(folded) + r"(?!\w)", line) for line in opening)
        if part and not shown and all(folded != p.casefold() for p in parts):
            parts.append(part)
    where = " › ".join(parts)
    numbers = " ".join(number_words(f"{where}\n{draft.text}"))
    return f"{where}\n{numbers}" if numbers else where


def with_context(drafts: list[ChunkDraft], title: str, file_name: str = "") -> list[ChunkDraft]:
    """`drafts` with their search context (`search_context`) filled in."""
    return [replace(d, context=search_context(title, d, file_name)) for d in drafts]


def embedding_text(draft: ChunkDraft) -> str:
    """What the embedder reads for a chunk: its title and heading path (the context's first line)
    above its text. A chunk fills the model's input by itself, so the model leaves off the
    chunk's last few words instead; they stay in the keyword index."""
    where = draft.context.split("\n", 1)[0]
    return f"{where}\n{draft.text}" if where else draft.text


def chunk(
    doc: Extracted,
    max_tokens: int = 256,
    overlap_tokens: int = 32,
    count_tokens: TokenCounter | None = None,
) -> list[ChunkDraft]:
    """Cut ``doc`` into chunks of at most ``max_tokens`` (as counted by ``count_tokens``).

    ``count_tokens`` defaults to :func:`estimate_tokens`; pass the embedder's real tokenizer count
    (without special tokens) for exact bounds. ``overlap_tokens`` must be less than half of
    ``max_tokens``.
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    if not 0 <= overlap_tokens < max_tokens // 2:
        raise ValueError("overlap_tokens must be >= 0 and less than half of max_tokens")
    return _Chunker(doc, max_tokens, overlap_tokens, count_tokens or estimate_tokens).run()
