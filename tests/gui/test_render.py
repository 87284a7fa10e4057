"""Rendering helpers: document text as inert Markdown/HTML, citations as the only links."""

from __future__ import annotations

import re

from PySide6.QtGui import QTextDocument

from ragdesk.gui.chatview import MARKDOWN
from ragdesk.gui.render import (
    TranscriptEntry,
    answer_markdown,
    entry_markdown,
    escape_all,
    marked_html,
    parse_cite_url,
    tooltip,
)

HOSTILE = ('<img src="file:///etc/hostname"> <a href="http://x">a</a> ![i](file:///x.png) '
           '[l](http://x) <http://x> **bold** `code [1]` [2] [9]')


def _rendered(markdown: str) -> QTextDocument:
    doc = QTextDocument()
    doc.setMarkdown(markdown, MARKDOWN)
    return doc


def test_answer_markdown_keeps_formatting_and_links_only_known_citations(qapp) -> None:
    md = answer_markdown(HOSTILE, 3, [1, 2])
    doc = _rendered(md)
    html = doc.toHtml()
    assert "<img" not in html
    assert re.findall(r'href="([^"]+)"', html) == ["cite:3/2"], "only [2] is a known citation outside code"
    text = doc.toPlainText()
    for piece in ('<img src="file:///etc/hostname">', "![i](file:///x.png)", "[l](http://x)", "[9]",
                  "code [1]"):
        assert piece in text
    assert "font-weight:700" in html, "the model's own Markdown formatting is kept"


def test_escape_all_shows_text_exactly(qapp) -> None:
    raw = "# not a heading *not italic* <b>x</b> [a](b) \\ `c` 1. _u_"
    assert _rendered(escape_all(raw)).toPlainText() == raw


def test_entries_and_cite_urls(qapp) -> None:
    entry = TranscriptEntry(key=0, role="assistant", text="[1] Title, p. 2: <b>passage</b>",
                            mode="extractive", citations=({"n": 1},))
    doc = _rendered(entry_markdown(entry))
    assert "extractive answer" in doc.toPlainText() and "<b>passage</b>" in doc.toPlainText()
    assert parse_cite_url("cite:0/1") == (0, 1)
    assert parse_cite_url("http://x/1") is None and parse_cite_url("cite:0/1/../2") is None


def test_snippets_and_tooltips_are_escaped() -> None:
    html = marked_html("a <b>c</b> lamp", [(11, 15)])
    assert html == "a &lt;b&gt;c&lt;/b&gt; <b><u>lamp</u></b>"
    assert tooltip("<img src=x>\nline") == "<qt>&lt;img src=x&gt;<br>line</qt>"
