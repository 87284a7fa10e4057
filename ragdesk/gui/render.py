"""Text -> Markdown/HTML for the Qt views, with document-derived text made inert.

Document text is untrusted: it reaches the screen through answers (the model quotes it), titles,
snippets and passages. Three layers keep it from becoming live markup:

* Markdown is imported with ``MarkdownNoHTML`` (raw HTML stays text) by the views;
* here, every ``[``, ``]``, ``<`` and ``>`` outside code in an answer is backslash-escaped, so no
  link, image or autolink can be written by a document; only the citations RagDesk itself turns
  into ``cite:`` links remain links. Text that should carry no formatting at all (questions,
  titles, extractive passages) has every ASCII punctuation character escaped;
* HTML snippets are built with ``html.escape`` around every piece of document text.

The transcript view also refuses to load any resource (images), whatever the Markdown says.
Nothing here imports Qt, so it is tested without a display.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

CITE_SCHEME = "cite"
_PUNCTUATION = set(string.punctuation)
_ANSWER_SPECIALS = set("[]<>\\")
_CITATION = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")
# Fenced code blocks and code spans: their content is shown literally by Markdown, so it is not
# escaped (a backslash would show).
_CODE = re.compile(r"(^|\n)(```|~~~)[^\n]*\n.*?(\n\2[ \t]*(?=\n|$)|$)|(`+)(?!`).+?(?<!`)\4(?!`)", re.DOTALL)


def escape_all(text: str) -> str:
    """Plain text as Markdown that renders exactly as the text, with no formatting at all."""
    out = []
    for ch in text:
        if ch in _PUNCTUATION:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def plain_paragraphs(text: str) -> str:
    """Plain text as Markdown: fully escaped, its line breaks kept as hard breaks."""
    lines = [escape_all(line.rstrip()) for line in text.strip("\n").split("\n")]
    return "  \n".join(line if line.strip() else "\u00a0" for line in lines)


def _escape_answer_text(text: str) -> str:
    return "".join("\\" + ch if ch in _ANSWER_SPECIALS else ch for ch in text)


def _split_code(text: str) -> list[tuple[bool, str]]:
    """(is_code, piece) in order."""
    parts: list[tuple[bool, str]] = []
    pos = 0
    for m in _CODE.finditer(text):
        if m.start() > pos:
            parts.append((False, text[pos:m.start()]))
        parts.append((True, m.group(0)))
        pos = m.end()
    if pos < len(text):
        parts.append((False, text[pos:]))
    return parts


def cite_url(message_key: int, n: int) -> str:
    return f"{CITE_SCHEME}:{message_key}/{n}"


def parse_cite_url(url: str) -> tuple[int, int] | None:
    """(message key, citation number) from a ``cite:K/N`` link, or None for anything else."""
    m = re.fullmatch(rf"{CITE_SCHEME}:(\d+)/(\d+)", url)
    return (int(m.group(1)), int(m.group(2))) if m else None


def answer_markdown(answer: str, message_key: int, cited: Iterable[int]) -> str:
    """A model's answer as safe Markdown: its own formatting kept, `[n]` made citation links."""
    valid = set(cited)
    out = []
    for is_code, piece in _split_code(answer):
        if is_code:
            out.append(piece)
            continue
        pos = 0
        for m in _CITATION.finditer(piece):
            out.append(_escape_answer_text(piece[pos:m.start()]))
            numbers = [int(x) for x in re.findall(r"\d+", m.group(1))]
            if numbers and all(n in valid for n in numbers):
                out.append("".join(f"[\\[{n}\\]]({cite_url(message_key, n)})" for n in numbers))
            else:
                out.append(_escape_answer_text(m.group(0)))
            pos = m.end()
        out.append(_escape_answer_text(piece[pos:]))
    return "".join(out)


def extractive_markdown(answer: str, message_key: int, cited: Iterable[int]) -> str:
    """An extractive answer (document passages verbatim): no formatting from the documents at
    all, each line kept, the leading `[n]` of each passage made a citation link."""
    valid = set(cited)
    lines = []
    for line in answer.strip("\n").split("\n"):
        m = re.match(r"\[(\d{1,3})\]\s?", line)
        if m and int(m.group(1)) in valid:
            n = int(m.group(1))
            lines.append(f"[\\[{n}\\]]({cite_url(message_key, n)}) " + escape_all(line[m.end():]))
        else:
            lines.append(escape_all(line) if line.strip() else "")
    # Passages as separate paragraphs: easier to read than one block.
    return "\n\n".join(line for line in lines if line)


# Words too common to be worth marking in a snippet (the retriever marks every query word).
_STOPWORDS = frozenset("""a an and are as at be but by can could did do does for from had has have how i if in
into is it its may might must no not of on or our shall should so than that the their them then there
these they this those to under was we were what when where which while who whom why will with would
you your""".split())  # noqa: SIM905 - a word list reads better as text


def meaningful_marks(text: str, marks: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The marks worth showing: matched words, without the stop words of a question."""
    return tuple((s, e) for s, e in marks if text[s:e].lower() not in _STOPWORDS)


def marked_html(text: str, marks: Sequence[tuple[int, int]]) -> str:
    """A snippet as HTML with its matched terms in bold and underlined (not colour alone)."""
    out, last = [], 0
    for start, end in sorted(marks):
        if start < last or end > len(text) or start >= end:
            continue
        out.append(html.escape(text[last:start]))
        out.append(f"<b><u>{html.escape(text[start:end])}</u></b>")
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out)


@dataclass(frozen=True)
class TranscriptEntry:
    """One message as the transcript shows it."""

    key: int  # index in the transcript; citation links carry it
    role: str  # "user" | "assistant"
    text: str
    mode: str = "llm"  # "llm" | "extractive"
    status: str = "complete"
    notice: str | None = None
    citations: tuple[dict[str, Any], ...] = ()
    model: str | None = None
    waiting: str | None = None  # while no text has come: what is happening ("waiting for …")
    grounding: dict[str, Any] | None = field(default=None, compare=False)  # core/grounding.py's JSON


def entry_markdown(entry: TranscriptEntry) -> str:
    """The Markdown for one message, heading included."""
    if entry.role == "user":
        return f"#### You\n\n{plain_paragraphs(entry.text)}\n"
    return f"{assistant_heading(entry)}\n\n{assistant_body(entry)}\n"


def assistant_heading(entry: TranscriptEntry) -> str:
    label = "#### RagDesk"
    if entry.mode == "extractive":
        label += " — *extractive answer: passages from your documents, not generated by a model*"
    elif entry.model:
        label += f" — *{escape_all(entry.model)}*"
    return label


def assistant_body(entry: TranscriptEntry, streaming: bool = False) -> str:
    numbers = [int(c["n"]) for c in entry.citations if "n" in c]
    if entry.mode == "extractive":
        body = extractive_markdown(entry.text, entry.key, numbers)
    else:
        body = answer_markdown(entry.text, entry.key, numbers)
    if streaming and not entry.text and entry.waiting:
        body = f"*{escape_all(entry.waiting)}*"
    elif streaming:
        body += " ▍"
    elif entry.status == "stopped":
        body += "\n\n*— stopped*"
    notice = entry.notice
    if notice and entry.mode == "extractive":
        # The passages already open with the reason: the note adds only what to do about it.
        reason, _, remedy = notice.partition(" — ")
        if remedy and entry.text.startswith(reason):
            notice = f"For a written answer: {remedy}"
    if notice:
        body += f"\n\n> **Note:** {escape_all(notice)}"
    footer = grounding_footer(entry) if not streaming else ""
    if footer:
        body += f"\n\n{footer}"
    if not body.strip():
        body = "*…*"
    return body


# --- the grounding check, as the transcript shows it (issue 22) -----------------------------------

CHECK_SCHEME = "check"
FLAGGED = ("not supported", "uncited")


def grounding_footer(entry: TranscriptEntry) -> str:
    """The answer's footer: "✓ 4 of 4 sentences supported by their sources" (⚠ when some are
    not), in italics; empty when the answer was not checked."""
    g = entry.grounding
    if not g or not g.get("summary"):
        return ""
    flagged = sum(1 for s in g.get("sentences", ()) if s.get("verdict") in FLAGGED)
    sign = "⚠" if flagged else "✓"
    return f"*{sign} {escape_all(str(g['summary']))}*"


@dataclass(frozen=True)
class Mark:
    """A sentence the transcript marks: where to find it, and what its tooltip says."""

    index: int  # the sentence's index in the grounding's sentences
    target: str  # its text as rendered, up to its first citation (the part that is marked)
    verdict: str
    tooltip: str  # plain text
    closest: dict[str, Any] | None  # the closest passage as a citation the preview can open


def check_url(message_key: int, index: int) -> str:
    return f"{CHECK_SCHEME}:{message_key}/{index}"


def parse_check_url(url: str) -> tuple[int, int] | None:
    """(message key, sentence index) from a ``check:K/I`` link, or None for anything else."""
    m = re.fullmatch(rf"{CHECK_SCHEME}:(\d+)/(\d+)", url)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _rendered(text: str) -> str:
    """A sentence's text as Markdown renders it: list, heading and emphasis marks gone."""
    text = re.sub(r"^\s*(?:[-*+]|\d{1,3}[.)]|#{1,6})\s+", "", text)
    text = re.sub(r"(\*{1,3}|`+)", "", text)
    return " ".join(text.split())


def grounding_marks(entry: TranscriptEntry) -> list[Mark]:
    """The marks of an answer's unsupported and uncited sentences, in order."""
    g = entry.grounding
    if not g:
        return []
    by_n = {int(c["n"]): c for c in entry.citations if "n" in c}
    marks = []
    for i, s in enumerate(g.get("sentences", ())):
        verdict = s.get("verdict")
        if verdict not in FLAGGED:
            continue
        text = str(s.get("text", ""))
        cite = _CITATION.search(text)
        target = _rendered(text[: cite.start()] if cite and cite.start() > 0 else text)
        if not target:
            continue
        closest = s.get("closest") or None
        lines = []
        if verdict == "uncited":
            lines.append("Uncited claim: no source is given for this sentence.")
        else:
            lines.append(f"Not supported by its sources: {s.get('reason', '')}.")
        preview = None
        if closest:
            page = f", p. {closest.get('page')}" if closest.get("page") else ""
            lines.append(f"Closest passage: [{closest.get('n')}] {closest.get('title', '')}{page}:")
            lines.append(f"“{_shorten(str(closest.get('text', '')), 240)}”")
            preview = dict(by_n.get(int(closest.get("n", -1)), {}))
            preview.update({k: closest[k] for k in closest if k not in ("score", "text")})
            if "document_id" in preview:
                lines.append("Click the sentence to open that passage.")
            else:
                preview = None
        marks.append(Mark(i, target, str(verdict), "\n".join(lines), preview))
    return marks


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def tooltip(text: str) -> str:
    """A tooltip that is always shown as plain text. Qt guesses whether a tooltip is rich text
    from its content, so a title such as ``<img src=...>`` would otherwise become markup."""
    return "<qt>" + html.escape(text).replace("\n", "<br>") + "</qt>"
