"""Files read by our own Python code: plain text, Markdown, source code, CSV/TSV and JSON, with
the encoding detected (never assumed). A text file is one page; offsets index its decoded text
(the Markdown source as written, for Markdown). Also the small text helpers the other readers
share (control characters, CJK ranges, list marks, paragraph blocks)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from charset_normalizer import from_bytes

from ragdesk.core.extract.formats import MB, ExtractionError, extension
from ragdesk.core.extract.title import choose_title
from ragdesk.core.records import Block, Extracted, Page

CONTROL_CHARS = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160), 0xFFFE, 0xFFFF])
CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef"
)


# Word's list bullets in the Symbol and Wingdings fonts come out of a PDF as private-use code
# points (U+F0B7 is Symbol's bullet, Word's first-level default; U+F0A7 its third level's small
# square): shown as empty boxes in every passage, and counted as undecodable characters.
PRIVATE_BULLETS = {0xF0B7: "•", 0xF0A7: "▪"}
CLEANING = {**CONTROL_CHARS, **PRIVATE_BULLETS}


def clean(text: str) -> str:
    """Drop control characters (Type3 and broken fonts emit them as 'text'); Word's bullets
    from its symbol fonts as the bullets they are."""
    return text.translate(CLEANING)


LIST_MARK = re.compile(
    r"^\s*(?:[•◦▪▫‣⁃●○■□–—\-*+]|\(?\d{1,3}[.)]|\(?[a-zA-Z][.)])\s+"  # bullets, 1. 2) a) (b)
)


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
    return text.translate(CONTROL_CHARS | {ord("\t"): "\t", ord("\f"): "\n"})


_PARAGRAPH_SPLIT = re.compile(r"\n[ \t]*\n")


def paragraph_blocks(text: str, kind: str = "paragraph", base: int = 0) -> list[Block]:
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
            if kind == "paragraph" and LIST_MARK.match(stripped):
                k = "list"
            blocks.append(Block(1, base + s, base + e, k, 0))
        if m:
            start = m.end()
    return blocks


def extract_plain(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    text = decode_text(data, warnings)
    title = choose_title("", [], path.name)
    return Extracted(title, "text", [Page(1, text)], paragraph_blocks(text), warnings)


def extract_code(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    # Source files keep their extension in the title: main.py and main.rs are different files.
    text = decode_text(data, warnings)
    return Extracted(path.name, "code", [Page(1, text)], paragraph_blocks(text, "code"), warnings)


def extract_markdown(data: bytes, path: Path, warnings: list[str]) -> Extracted:
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
    first_h1: list[str] = []
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
                if not first_h1 and level == 1:
                    first_h1.append(content)
            continue
        kind = kinds.get(tok.type)
        if kind:
            s, e = span(tok.map)
            if s < e:
                blocks.append(Block(1, s, e, kind, 0))
    title = choose_title(front_matter_title(text), first_h1, path.name)
    return Extracted(title, "markdown", [Page(1, text)], blocks, warnings)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_FRONT_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.M | re.I)


def front_matter_title(text: str) -> str:
    """The ``title:`` of a Markdown file's YAML front matter (its metadata), or ""."""
    block = _FRONT_MATTER.match(text)
    found = _FRONT_TITLE.search(block.group(1)) if block else None
    if not found:
        return ""
    value = found.group(1)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value


def extract_csv(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    text = decode_text(data, warnings)
    if extension(path) in ("tsv", "tab"):
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
        title = choose_title("", [], path.name)
        return Extracted(title, "csv", [Page(1, text)], paragraph_blocks(text), warnings)
    body = "\n".join(lines)
    blocks = [Block(1, 0, len(body), "table", 0)] if body else []
    return Extracted(choose_title("", [], path.name), "csv", [Page(1, body)], blocks, warnings)


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


def extract_json(data: bytes, path: Path, warnings: list[str]) -> Extracted:
    """JSON as ``path.to.key: value`` lines; one block per top-level key or record."""
    text = decode_text(data, warnings)
    records: list[tuple[str, Any]] = []
    try:
        if extension(path) in ("jsonl", "ndjson"):
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
        title = choose_title("", [], path.name)
        return Extracted(title, "json", [Page(1, text)], paragraph_blocks(text), warnings)
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
    title = choose_title("", [], path.name)
    return Extracted(title, "json", [Page(1, "".join(parts))], blocks, warnings)
