"""Passages that name answers instead of giving them: tables of contents, back-of-book indexes
and reference lists.

They share the words of every question about the sections, terms and papers they list, so they
outranked the text that answers (on a 155-page report, questions about its findings returned
five reference-list entries). They are recognised by their shape -- page numbers after dot
leaders or at line ends, lines of "term, 12, 45", entries dense with years and "et al." --
and the retriever moves them down (`retrieval.SCRAP_DELAY`), not out: a question about the
literature may still want its list.
"""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"(?<!\w)\d{1,4}(?!\w)")  # a word (as _WORD cuts them) of 1-4 digits
_LEADER = re.compile(r"(?:\.\s?){4,}\s*\d{1,4}\b|…\s*\d{1,4}\b")
_ENDS_IN_PAGE = re.compile(r"[A-Za-z][^\n]*?\s(?:\d{1,4}|[ivxlc]{1,6})$")
_INDEX_ENTRY = re.compile(r"[^\W\d_][\w)]*,\s*\d{1,4}(?:\s*[-–]\s*\d{1,4})?\b")
_YEAR = re.compile(r"\b(?:1[89]|20)\d{2}[a-z]?\b")
_CITATION_MARK = re.compile(
    r"\[\d{1,3}\]|\bet al\b|\bpp?\.\s?\d|\bVol\.\s?\d|\bProc\.|\bdoi\b|\bIn:|\bJ\.\s[A-Z]"
)


@functools.lru_cache(maxsize=4096)
def scrap_kind(text: str) -> str | None:
    """"contents", "index" or "references" when `text` is shaped like one, else None.

    Asked of every passage a search considers (on the LAN server's hot path), so it is kept
    for the passages seen most recently, and its counts are made by the regex engine."""
    words = _WORD.findall(text)
    if len(words) < 8:
        return None
    numbers = len(_NUMBER.findall(text))
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    leaders = len(_LEADER.findall(text))
    if leaders >= 3 and leaders * 25 >= len(words):
        return "contents"
    if len(lines) >= 4 and sum(1 for ln in lines if _ENDS_IN_PAGE.match(ln)) >= 0.6 * len(lines) \
            and numbers >= 0.15 * len(words):
        return "contents"
    if len(_INDEX_ENTRY.findall(text)) >= 5 and numbers >= 0.25 * len(words):
        return "index"
    years = len(_YEAR.findall(text))
    marks = len(_CITATION_MARK.findall(text))
    if years >= 3 and marks >= 2 and (years + marks) * 100 >= 8 * len(words):
        return "references"
    return None
