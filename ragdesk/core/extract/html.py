"""The visible text of HTML (an e-mail's HTML body), with line breaks at block elements; and an
HTML page's <title>."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser


class _HTMLText(HTMLParser):
    """Visible text of an HTML fragment, with line breaks at block elements."""

    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul",
                        "ol", "blockquote", "pre", "hr", "section", "article", "header", "footer"})
    _SKIP = frozenset({"script", "style", "head", "title", "noscript", "template"})

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


_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.I | re.S)


def html_title(html: str) -> str:
    """The text of the page's <title> element, or "" (MuPDF does not report it)."""
    found = _TITLE.search(html)
    return " ".join(unescape(re.sub(r"<[^>]*>", "", found.group(1))).split()) if found else ""
