"""Text that is not text: what a PDF's fonts give when their characters cannot be decoded.

A font without a usable ToUnicode map comes out as replacement characters, control and
private-use code points, or runs of punctuation ("Co�st�u�to� �ow", "!\"��*�$�*$:*(M�"). Such
a passage must never be a search hit (it matches nothing a person types, and the embedder makes
a vector of noise from it), and the page it is on should be shown as degraded. A single odd
character (a "°" lost as "�" in "Boiling Points �C") is not garbage: the measure is a share.
"""

from __future__ import annotations

import unicodedata

MIN_BAD = 3  # at least this many undecodable characters ...
BAD_SHARE = 0.10  # ... and this share of the visible characters
MIN_LETTER_SHARE = 0.35  # or: visible text with fewer letters than this and undecodable ones


# A page's record among the degraded pages (extract.DegradedPage, step "text").
UNREADABLE = "unreadable text (a font whose characters could not be decoded), left out of search"


def _bad(c: str) -> bool:
    return c == "\ufffd" or unicodedata.category(c) in ("Cc", "Co", "Cs")


def is_garbage(text: str) -> bool:
    """Whether `text` reads as undecodable characters rather than words (see the module)."""
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return False
    bad = sum(1 for c in visible if _bad(c))
    if bad < MIN_BAD:
        return False
    letters = sum(1 for c in visible if c.isalpha())
    return bad >= BAD_SHARE * len(visible) or letters < MIN_LETTER_SHARE * len(visible)


def garbage_lines(lines: list[str]) -> int:
    """How many of `lines` are garbage, if that is enough to call their page degraded (at least
    two, or at least 30 % of the lines with text), else 0."""
    texts = [ln for ln in lines if ln.strip()]
    bad = sum(1 for ln in texts if is_garbage(ln))
    return bad if bad >= 2 or (texts and bad >= 0.3 * len(texts)) else 0


def garbage_pages(pages: list[tuple[int, str]]) -> list[int]:
    """The pages (numbers) with garbage lines enough to be degraded (`garbage_lines`)."""
    return [number for number, text in pages if garbage_lines(text.splitlines())]
