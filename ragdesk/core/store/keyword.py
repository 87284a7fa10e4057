"""Keyword search shared by both stores: a query's words, FTS5's BM25 and the keyword plan.

The vault (FTS5) and the PostgreSQL store (tsvector) rank keyword hits the same way, so the
words of a query, BM25's constants and idf, and the budget that bounds a search's cost are
defined here once and used by both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

_TERM = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 64  # words of one query looked for; the rest of a pasted page adds cost, not recall


# Numbers and versions as people type them. The word tokenizers (FTS5's unicode61, PostgreSQL's
# parser) cut "v1.10" into "v1" and "10" and "1.10" into "1" and "10", so "version 1.10" never met
# "v1.10", and "ISO26262" never met "ISO 26262". Each such form also gets one joined word, the
# same from every spelling -- "1dot10" for 1.10 / v1.10 / V1.10, "iso26262" for ISO 26262 /
# ISO-26262 / ISO26262 -- added to a chunk's search context (chunking.search_context) and to the
# query's words: one rare word that matches the way it was meant.
_VERSION = re.compile(r"(?<![\w.])[vV]?(\d+(?:\.\d+)+)(?![.]?\w)")
# a standard's code: capitals, a space or hyphen, a number ("ISO 26262", "SP 800-223", "RFC-9110"),
# or letters and digits written together ("iso26262"); not "page 12" or "in 2021"
_CODE = re.compile(r"(?<![\w-])(?:([A-Z]{2,6})[ \-]|([A-Za-z]{2,6}))(\d{2,}(?:-\d+)*)(?![\w-])")


def number_words(text: str) -> list[str]:
    """The joined words of the versions and standard numbers in `text`, unique, in order:
    "1.10" and "v1.10" -> "1dot10"; "ISO 26262" -> "iso26262"; "SP 800-223" -> "sp800223"."""
    words = [m.group(1).replace(".", "dot") for m in _VERSION.finditer(text)]
    words += [((m.group(1) or m.group(2)) + m.group(3).replace("-", "")).lower()
              for m in _CODE.finditer(text)]
    return list(dict.fromkeys(words))


def query_terms(text: str, limit: int | None = MAX_TERMS) -> list[str]:
    """The words of anything a user typed, lower-cased, unique, in order (at most `limit`),
    then the joined forms of its versions and standard numbers (`number_words`)."""
    terms = list(dict.fromkeys(t.lower() for t in _TERM.findall(text)))
    terms = terms if limit is None else terms[:limit]
    return list(dict.fromkeys([*terms, *number_words(text)]))


# The keyword budget: a search scores about this many chunks at most, whatever the index's size.
# Ranking costs something for every chunk that matches, so one common word made every query cost
# the whole index. Past the budget a word in half the chunks or more is left out (BM25 gives it
# ~no weight), and so are the commonest of the rest once their chunks add up to more than the
# budget (they weigh least): a small loss of quality for bounded time (keyword_plan;
# benchmarks/bench_keyword_budget.py). Indexes of up to this many chunks are searched exactly.
KEYWORD_BUDGET = 2000
# When no word fits the budget, the window of newest chunks (x budget) an unranked AND of a few
# common words is looked for in, so that this scan is bounded too.
UNRANKED_WINDOW = 16

# Okapi BM25 as FTS5's bm25() computes it (fts5_aux.c), in both stores.
BM25_K1 = 1.2
BM25_B = 0.75


def bm25_idf(rows: int, chunks: int) -> float:
    """A word's idf as FTS5 gives it: ln((N - n + 0.5) / (n + 0.5)), floored at 1e-6 (a word in
    over half the chunks weighs ~nothing); `rows` N chunks in the index, `chunks` n hold it."""
    idf = math.log((rows - chunks + 0.5) / (chunks + 0.5)) if rows else 0.0
    return max(idf, 1e-6)


def bm25_average_length(rows: int, tokens: int) -> float:
    """The average chunk length BM25 normalises by: `tokens` over `rows` chunks (1.0 in an empty
    index, so that nothing divides by zero)."""
    return tokens / rows if rows and tokens else 1.0


def keyword_plan(terms: Sequence[str], chunks: Mapping[str, int], rows: int,
                 budget: int) -> tuple[list[str], bool]:
    """Which of a query's words a keyword search looks for, and whether it ranks them by BM25:
    the keyword budget (KEYWORD_BUDGET above says why).

    `chunks`: how many chunks hold each word (a store may count only up to budget + 1);
    `rows`: the chunks in the index. An index of up to `budget` chunks: every word, ranked.
    Otherwise a word in half the chunks or more is left out (BM25 gives it ~no weight), and the
    informative words are ranked if their chunks add up to the budget, else the rarest of them
    that do. If none fits (every word is costly or weightless): up to three of those words, the
    rarest (of equal counts the longest: long words are the rarer ones), to be AND-ed, unranked."""
    if rows <= budget:
        return list(terms), True
    half = (rows + 1) // 2
    informative = [t for t in terms if 0 < chunks[t] < half and chunks[t] <= budget]
    costly = [t for t in terms if budget < chunks[t] < half]
    weightless = [t for t in terms if chunks[t] >= half]
    if not informative and not costly:  # only weightless words (or none at all)
        costly = weightless
    if informative and not costly and sum(chunks[t] for t in informative) <= budget:
        return informative, True
    chosen: set[str] = set()
    total = 0
    for t in sorted(informative, key=lambda t: (chunks[t], t)):  # rarest first
        if total + chunks[t] > budget:
            break
        chosen.add(t)
        total += chunks[t]
    if chosen:
        return [t for t in informative if t in chosen], True
    return sorted(costly, key=lambda t: (chunks[t], -len(t), t))[:3], False
