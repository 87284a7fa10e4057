"""Grounding: every sentence of an answer held against the passages it cites.

A model's answer sounds right whether or not its sources say it. This check splits the answer
into sentences, reads each one's citations (``[n]``), and decides for each claim:

* ``supported``: the cited passages say it (a passage sentence close in meaning, or the
  sentence's words found there), and every fact a reader would check occurs in them;
* ``weakly supported``: the facts occur, but the wording is only loosely related;
* ``not supported``: a number, date, quantity, name or quoted term is missing from the cited
  passages, or nothing there is close in meaning; the passage that came closest is named;
* ``uncited``: a claim without any citation.

Facts are compared normalised ("1,000" = "1000", "10 %" = "10 percent", "four" = "4"); names
are capitalised words, identifiers and acronyms; quoted terms must occur as written.

Meaning is compared with the built-in embedder (the sentence against its cited passages' two
sentences that share most of its words), but only where the words alone cannot decide: a
sentence whose content words are almost all in its passage is supported, one with a missing fact
or sharing hardly a word with its passage is not, and none of these needs a model run. Embedding
a sentence costs about 5 ms of CPU on two cores (benchmarks/RESULTS.md, issue 22), so vectors are
cached per text, and `GroundingChecker.feed` lets a caller embed completed sentences (and the
passages they cite) while the answer still streams, leaving little for the check of the finished
answer; what is embedded at once goes in one call.

Nothing here imports Qt or talks to the network; the embedder is passed in (None: words only).
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ragdesk.core.embedding.base import Embedder

SUPPORTED = "supported"
WEAK = "weakly supported"
NOT_SUPPORTED = "not supported"
UNCITED = "uncited"
VERDICTS = (SUPPORTED, WEAK, NOT_SUPPORTED, UNCITED)
FORMAT_VERSION = 1

# Decision thresholds, chosen on the dev half of benchmarks/bench_grounding.py (odd question
# ids) and reported on the test half.
LEXICAL_SUPPORTED = 0.8  # share of content words found in the cited passages: supported, no model
LEXICAL_UNSUPPORTED = 0.2  # below this (4+ content words): not supported, no model either
SEMANTIC_SUPPORTED = 0.62  # cosine with the closest cited passage sentence
SEMANTIC_WEAK = 0.45
LEXICAL_WEAK = 0.5  # without an embedder: words alone
CANDIDATES = 2  # passage sentences per answer sentence compared by meaning (best by words)
MAX_SENTENCE_WORDS = 48  # passage "sentences" longer than this (tables, code) are cut in windows

# --- sentences ------------------------------------------------------------------------------------

_CITE = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
_CODE_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
# A sentence ends at . ! ? (or CJK 。！？), then closing quotes/brackets, then citations, then
# whitespace or the end. Citations written after the full stop belong to the sentence before.
_END = re.compile(
    r"[.!?]+[\"'”’)\]]*(?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])*(?=\s|$)"
    r"|[。！？]+[”’」』)]*(?:\s*\[\d{1,3}(?:\s*[,;]\s*\d{1,3})*\])*")
_ABBREVIATIONS = frozenset("""e.g i.e etc vs cf fig figs no nos p pp vol ch sec dr mr mrs ms st
jr sr prof inc ltd co approx al ca""".split())  # noqa: SIM905 - a word list reads better as text
_LIST_MARK = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?")
_HEADING = re.compile(r"^\s*#{1,6}\s+")


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer: its text (citations included), where it is in the answer,
    and the source numbers it cites."""

    text: str
    start: int
    end: int
    citations: tuple[int, ...]

    @property
    def claim(self) -> str:
        """The sentence without its citation marks and markup."""
        text = _CITE.sub(" ", self.text)
        text = _LIST_MARK.sub("", _HEADING.sub("", text))
        text = re.sub(r"[*_`]{1,3}", "", text)
        return " ".join(text.split())


def _cites(text: str) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for m in _CITE.finditer(text):
        for part in re.split(r"[,;]", m.group(1)):
            seen.setdefault(int(part), None)
    return tuple(seen)


def split_sentences(answer: str) -> list[Sentence]:
    """The answer's sentences in order, code blocks left out; list items and headings are
    sentences of their own (a line break ends one)."""
    masked = _CODE_FENCE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), answer)
    out: list[Sentence] = []
    pos = 0
    for line in masked.split("\n"):
        line_start, pos = pos, pos + len(line) + 1
        start = 0
        for m in _END.finditer(line):
            end = m.end()
            if _false_end(line, m.start(), end):
                continue
            out.extend(_sentence(answer, masked, line_start + start, line_start + end))
            start = end
        out.extend(_sentence(answer, masked, line_start + start, line_start + len(line)))
    # A line that holds only citations (a model's "Sources: [1][2]" tail) belongs to the sentence
    # before it.
    merged: list[Sentence] = []
    for s in out:
        if merged and not _CITE.sub("", s.text).strip(" .,;:") and s.citations:
            prev = merged[-1]
            merged[-1] = Sentence(answer[prev.start:s.end], prev.start, s.end,
                                  tuple(dict.fromkeys(prev.citations + s.citations)))
        else:
            merged.append(s)
    return merged


_LAST_WORD = re.compile(r"([\w.]+)$")


def _false_end(line: str, at: int, end: int) -> bool:
    """A mark that does not end a sentence: a full stop after an abbreviation or an initial
    ("e.g.", "S. Hossenfelder"), or "!"/"?" inside one ("Done! and Also done!"). After a
    citation, or a CJK full stop, it always ends one."""
    mark = line[at]
    if mark in "。！？" or "[" in line[at:end]:
        return False
    rest = line[end:].lstrip()
    if mark in "!?":
        return bool(rest) and (rest[0].islower() or rest[0] in ",;:)")
    word = _LAST_WORD.search(line, max(0, at - 24), at)
    if word:
        w = word.group(1).lower().rstrip(".")
        if w in _ABBREVIATIONS or (len(w) == 1 and w.isalpha()):
            return True
    return bool(rest) and rest[0] in ",;:)"


def _sentence(answer: str, masked: str, start: int, end: int) -> list[Sentence]:
    if not masked[start:end].strip():
        return []
    text = answer[start:end]
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    return [Sentence(text, start + lead, start + lead + len(text), _cites(text))]


_NOT_A_CLAIM = re.compile(
    r"\b(?:(?:do|does|did) not (?:say|mention|contain|state|specify|cover|provide|include)"
    r"|(?:no|not enough) information|not (?:found|mentioned|stated|covered|specified)"
    r"|(?:cannot|can't|could not|couldn't) (?:find|answer|tell|determine)|I don't know"
    r"|I do not know|not in the (?:provided )?(?:sources|documents))\b",
    re.IGNORECASE)


def is_claim(sentence: Sentence) -> bool:
    """Whether a sentence asserts something a source should back: not a heading or a lead-in
    ending with a colon, not a few words, not "the sources do not say"."""
    claim = sentence.claim
    if not claim or claim.endswith(":") or _HEADING.match(sentence.text):
        return False
    words = _WORD.findall(claim)
    cjk = sum(1 for ch in claim if _is_cjk(ch))
    if len(words) < 3 and cjk < 6:
        return False
    return not _NOT_A_CLAIM.search(claim)


# --- facts ----------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+(?:[''’]\w+)*", re.UNICODE)
_NUMBER = re.compile(
    r"(?<![0-9A-Za-z_.,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)*(?:\s?(?:%|per ?cent|percent))?",
    re.IGNORECASE)
_NUMBER_WORDS = {w: str(i) for i, w in enumerate((  # noqa: SIM905 - a word list reads better as text
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty").split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
                      "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000",
                      "million": "1000000", "billion": "1000000000", "dozen": "12"})
_QUOTED = re.compile(r"[\"“„«]([^\"“”„«»]{2,80})[\"”“»]|(?<!\w)['‘]([^'‘’]{2,60})['’](?!\w)|`([^`]{2,80})`")
# Capitalised words that are ordinary words at the start of a clause, not names.
_COMMON_CAPS = frozenset("""a an the this that these those it its in on at of for to from by with
as and or but if when where while which who what why how yes no not also however therefore thus so
then there here they we you i he she his her their our your my according based both each every all
some any many most such one first second third finally overall note unlike like after before
during because since although though instead only just even""".split())  # noqa: SIM905
_MONTHS = frozenset("""january february march april may june july august september october
november december""".split())  # noqa: SIM905


def _fold(text: str) -> str:
    """Lower case, accents and typographic variants folded, for matching facts."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    text = text.replace("“", '"').replace("”", '"').replace("\u00ad", "")
    return text.lower()


def normalise_number(token: str) -> str:
    """ "1,000" -> "1000", "10 %" / "10 percent" -> "10%", "04" -> "4", "1.10" stays."""
    t = _fold(token).strip()
    percent = bool(re.search(r"%|per ?cent", t))
    t = re.sub(r"\s*(?:%|per ?cent|percent)$", "", t)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", t):
        t = t.replace(",", "")
    if re.fullmatch(r"\d+", t):
        t = str(int(t))
    elif re.fullmatch(r"\d+\.\d+", t) and t.count(".") == 1:
        whole, frac = t.split(".")
        # "192,000.00" = "192000"; a version such as "1.10" keeps its digits.
        t = str(int(whole)) if set(frac) == {"0"} else f"{int(whole)}.{frac}"
    return t + ("%" if percent else "")


def numbers_in(text: str, words: bool = True) -> set[str]:
    """Every number of `text`, normalised (digits and, with `words`, number words)."""
    found = {normalise_number(m.group(0)) for m in _NUMBER.finditer(text)}
    # "10%" also counts as "10": a passage writing "10 per cent of 300" backs "10%" and "10".
    found |= {n[:-1] for n in found if n.endswith("%")}
    if words:
        for w in _WORD.findall(_fold(text)):
            for part in w.split("-"):
                if part in _NUMBER_WORDS:
                    found.add(_NUMBER_WORDS[part])
    return found


def _is_cjk(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"


def _is_name(word: str, first: bool, next_is_name: bool) -> bool:
    if len(word) < 2 or word.isdigit():
        return False
    if "_" in word or re.search(r"[a-z][A-Z]|[A-Za-z]\d|\d[A-Za-z]", word):
        return True  # identifiers: fz_try, linkDest, JPEG2000, v110
    if word.isupper() and len(word) >= 2 and word.isalpha():
        return word.lower() not in _COMMON_CAPS
    if not word[0].isupper() or word.lower() in _COMMON_CAPS:
        return False
    # The first word is capitalised anyway: a name only if the next word is one too (a person's
    # first name) and it does not read as a verb or adverb ("Disabling JavaScript ...").
    return not first or (next_is_name and not re.search(r"(?:ing|ed|ly|s)$", word))


@dataclass(frozen=True)
class Facts:
    """What a reader would check in a sentence: numbers (normalised), names, quoted terms."""

    numbers: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    quoted: tuple[str, ...] = ()
    # A capitalised first word that may be a name ("Gabriel supports ..."): it counts as missing
    # only when the passage lacks the word in any form (so "Compiler directives ..." passes when
    # the passage speaks of a compiler).
    lead: str | None = None


def facts_of(claim: str) -> Facts:
    quoted = tuple(dict.fromkeys(" ".join(next(g for g in m.groups() if g).split())
                                 for m in _QUOTED.finditer(claim)))
    numbers = {normalise_number(m.group(0)) for m in _NUMBER.finditer(claim)}
    # Number words count too, except "one" (as in "one of the options"): "six o'clock".
    for w in _WORD.findall(_fold(claim)):
        if w in _NUMBER_WORDS and w not in ("one", "zero", "hundred", "thousand", "dozen"):
            numbers.add(_NUMBER_WORDS[w])
    tokens = re.findall(r"[\w.'’-]+", claim)
    tokens = [t.strip(".'’-") for t in tokens]
    names: list[str] = []
    for i, tok in enumerate(tokens):
        tok = re.sub(r"['’]s$", "", tok)
        if not tok or _NUMBER.fullmatch(tok):
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        next_is_name = bool(nxt) and nxt[:1].isupper() and nxt.lower() not in _COMMON_CAPS
        month = tok.lower() in _MONTHS
        if (month and tok[:1].isupper()) or (not month and _is_name(tok, i == 0, next_is_name)):
            names.append(tok)
    lead = None
    if tokens and tokens[0] not in names:
        first = re.sub(r"['’]s$", "", tokens[0])
        if len(first) >= 3 and first[0].isupper() and first.isalpha() \
                and first.lower() not in _COMMON_CAPS and first.lower() not in _STOP \
                and not re.search(r"(?:ing|ed|ly)$", first):
            lead = first
    return Facts(tuple(sorted(numbers)), tuple(dict.fromkeys(names)), quoted, lead)


@dataclass
class _Haystack:
    """A passage prepared for fact lookups."""

    folded: str
    squashed: str
    words: frozenset[str]
    numbers: frozenset[str]
    stems: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Haystack:
        folded = " ".join(_fold(text).split())
        words = frozenset(re.findall(r"\w+", folded))
        return cls(folded, re.sub(r"[\W_]+", "", folded), words, frozenset(numbers_in(text)),
                   frozenset(_stem(w) for w in words))

    def has_number(self, n: str) -> bool:
        return n in self.numbers

    def has_name(self, name: str) -> bool:
        f = _fold(name)
        if f in self.words:
            return True
        squashed = re.sub(r"[\W_]+", "", f)
        return len(squashed) >= 3 and squashed in self.squashed

    def has_quote(self, quote: str) -> bool:
        f = " ".join(_fold(quote).split())
        if f in self.folded:
            return True
        squashed = re.sub(r"[\W_]+", "", f)
        return bool(squashed) and squashed in self.squashed


def missing_facts(facts: Facts, haystacks: Sequence[_Haystack]) -> list[str]:
    """The facts of a sentence that none of `haystacks` holds, as the reader would quote them."""
    missing = [n for n in facts.numbers if not any(h.has_number(n) for h in haystacks)]
    missing += [n for n in facts.names if not any(h.has_name(n) for h in haystacks)]
    missing += [f"“{q}”" for q in facts.quoted if not any(h.has_quote(q) for h in haystacks)]
    if facts.lead and not any(h.has_name(facts.lead) or _stem(_fold(facts.lead)) in h.stems
                              for h in haystacks):
        missing.append(facts.lead)
    return missing


# --- words ----------------------------------------------------------------------------------------

_STOP = frozenset("""a an and are as at be been being but by can could did do does for from had
has have how i if in into is it its may might must no nor not of on or our shall should so some
such than that the their them then there these they this those to too under up was we were what
when where which while who whom why will with would you your also about above after again against
all any because before below between both during each few further more most other own same very
just only over out off once here s t don now use used using uses one""".split())  # noqa: SIM905


@functools.lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    for suffix in ("ingly", "edly", "ing", "ies", "ied", "es", "ed", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
    return word


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
_CONTENT = re.compile(r"[^\W_]+")


def content_words(text: str) -> set[str]:
    words = {_stem(w) for w in _CONTENT.findall(_fold(text)) if w not in _STOP}
    out: set[str] = set()
    for w in words:
        if _CJK.search(w):  # CJK has no spaces: its characters count one by one
            out.update(_CJK.findall(w))
            rest = _CJK.sub("", w)
            if rest:
                out.add(rest)
        elif len(w) > 1 or w.isdigit():
            out.add(w)
    return out


def coverage(sentence_words: set[str], passage_words: set[str]) -> float:
    """The share of a sentence's content words that the passage holds."""
    if not sentence_words:
        return 0.0
    return len(sentence_words & passage_words) / len(sentence_words)


# --- passages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Passage:
    """A numbered source as the answer could cite it."""

    n: int
    text: str
    title: str = ""
    page: int = 0
    # Where it is, for a reader to open it: document_id, chunk_id, path, char_start, char_end.
    ref: Mapping[str, Any] = field(default_factory=dict, compare=False)


_REF_KEYS = ("document_id", "chunk_id", "path", "char_start", "char_end")


def passages_of(sources: Iterable[Any]) -> list[Passage]:
    """Passages from chat `Source`s (n, hit) or citation dicts (n, text, title, page)."""
    out = []
    for s in sources:
        if isinstance(s, Mapping):
            out.append(Passage(int(s["n"]), str(s.get("text") or s.get("snippet") or ""),
                               str(s.get("title") or ""), int(s.get("page") or 0),
                               {k: s[k] for k in _REF_KEYS if k in s}))
        else:
            h = s.hit
            out.append(Passage(s.n, h.text, h.title, h.page,
                               {"document_id": h.document_id, "chunk_id": h.chunk_id, "path": h.path,
                                "char_start": h.char_start, "char_end": h.char_end}))
    return out


def passage_sentences(text: str) -> list[str]:
    """A passage cut into sentences for comparison: lines joined (PDF text breaks lines in the
    middle of sentences), long runs without full stops (tables, code) cut into windows."""
    flat = " ".join(text.split())
    out: list[str] = []
    for s in split_sentences(flat):
        words = s.text.split()
        for i in range(0, len(words), MAX_SENTENCE_WORDS):
            piece = " ".join(words[i:i + MAX_SENTENCE_WORDS])
            if len(piece) >= 8:
                out.append(piece)
    return out or ([flat] if flat else [])


@dataclass
class _Prepared:
    passage: Passage
    haystack: _Haystack
    words: set[str]
    sentences: list[str]
    sentence_words: list[set[str]]


# --- verdicts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Closest:
    """The passage (and its sentence) that came closest to an answer sentence."""

    n: int
    title: str
    page: int
    text: str  # the passage sentence
    score: float
    ref: Mapping[str, Any] = field(default_factory=dict, compare=False)  # see Passage.ref

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, "title": self.title, "page": self.page, "text": self.text,
                "score": round(self.score, 3), **self.ref}


@dataclass(frozen=True)
class SentenceVerdict:
    text: str
    start: int
    end: int
    citations: tuple[int, ...]
    verdict: str
    score: float  # support by meaning (cosine) or, without an embedder, by words
    reason: str
    missing: tuple[str, ...] = ()
    closest: Closest | None = None

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end,
                "citations": list(self.citations), "verdict": self.verdict,
                "score": round(self.score, 3), "reason": self.reason, "missing": list(self.missing),
                "closest": self.closest.to_json() if self.closest else None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SentenceVerdict:
        c = data.get("closest")
        closest = Closest(int(c["n"]), str(c.get("title", "")), int(c.get("page") or 0),
                          str(c.get("text", "")), float(c.get("score", 0)),
                          {k: c[k] for k in _REF_KEYS if k in c}) if c else None
        return cls(str(data["text"]), int(data.get("start", 0)), int(data.get("end", 0)),
                   tuple(int(n) for n in data.get("citations", ())), str(data["verdict"]),
                   float(data.get("score", 0)), str(data.get("reason", "")),
                   tuple(data.get("missing", ())), closest)


@dataclass(frozen=True)
class Grounding:
    """The verdicts of one answer, claims only, in order."""

    sentences: tuple[SentenceVerdict, ...] = ()
    semantic: bool = True  # whether meaning was compared (an embedder was available)

    def count(self, *verdicts: str) -> int:
        return sum(1 for s in self.sentences if s.verdict in verdicts)

    @property
    def flagged(self) -> list[SentenceVerdict]:
        return [s for s in self.sentences if s.verdict in (NOT_SUPPORTED, UNCITED)]

    def summary(self) -> str:
        """ "3 of 4 sentences supported by their sources" (weakly supported ones counted, and
        said)."""
        total = len(self.sentences)
        if not total:
            return ""
        backed = self.count(SUPPORTED, WEAK)
        weak = self.count(WEAK)
        noun = "sentence" if total == 1 else "sentences"
        text = f"{backed} of {total} {noun} supported by their sources"
        if weak:
            text += f" ({weak} weakly)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"version": FORMAT_VERSION, "summary": self.summary(), "semantic": self.semantic,
                "counts": {v: self.count(v) for v in VERDICTS},
                "sentences": [s.to_json() for s in self.sentences]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Grounding | None:
        if not data or not isinstance(data, Mapping) or "sentences" not in data:
            return None
        try:
            return cls(tuple(SentenceVerdict.from_json(s) for s in data["sentences"]),
                       bool(data.get("semantic", True)))
        except (KeyError, TypeError, ValueError):
            return None


# --- the check ------------------------------------------------------------------------------------


@dataclass
class Thresholds:
    lexical_supported: float = LEXICAL_SUPPORTED
    semantic_supported: float = SEMANTIC_SUPPORTED
    semantic_weak: float = SEMANTIC_WEAK
    lexical_weak: float = LEXICAL_WEAK
    lexical_unsupported: float = LEXICAL_UNSUPPORTED


@dataclass
class _VectorCache:
    """Sentence vectors by text digest, least recently used dropped first; thread-safe."""

    size: int = 4096
    items: OrderedDict[bytes, np.ndarray] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def key(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, text: str) -> np.ndarray | None:
        k = self.key(text)
        with self.lock:
            v = self.items.get(k)
            if v is not None:
                self.items.move_to_end(k)
            return v

    def put(self, text: str, vector: np.ndarray) -> None:
        with self.lock:
            self.items[self.key(text)] = vector
            while len(self.items) > self.size:
                self.items.popitem(last=False)


class GroundingChecker:
    """Checks answers against their passages. One instance may serve many answers and threads
    (its vector cache is shared and locked; the embedder must allow concurrent calls, as the
    built-in one does)."""

    # Passages kept prepared (sentences, words, facts): a LAN server's answers cite the same
    # popular passages again and again, and 256 was fewer than one collection's 52 questions x
    # 8 sources (preparing was 10 % of the lock time at 40 questions a second, issue 21).
    # Some kilobytes each.
    PREPARED_KEPT = 1024

    def __init__(self, embedder: Embedder | None, thresholds: Thresholds | None = None,
                 cache_size: int = 4096) -> None:
        self.embedder = embedder
        self.thresholds = thresholds or Thresholds()
        self._cache = _VectorCache(cache_size)
        self._prepared: OrderedDict[bytes, _Prepared] = OrderedDict()
        self._lock = threading.Lock()

    # --- vectors -----------------------------------------------------------------------------

    def _vectors(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors for `texts`: cached ones looked up, the rest embedded in one call."""
        out: dict[str, np.ndarray] = {}
        todo: list[str] = []
        for t in dict.fromkeys(texts):
            v = self._cache.get(t)
            if v is None:
                todo.append(t)
            else:
                out[t] = v
        if todo and self.embedder is not None:
            vectors = self.embedder.embed(todo)
            for t, v in zip(todo, vectors, strict=True):
                self._cache.put(t, v)
                out[t] = v
        return out

    def _prepare(self, passage: Passage) -> _Prepared:
        key = _VectorCache.key(f"{passage.n}\0{passage.title}\0{passage.text}")
        with self._lock:
            found = self._prepared.get(key)
            if found is not None:
                self._prepared.move_to_end(key)
                return found
        sentences = passage_sentences(passage.text)
        sentence_words = [content_words(s) for s in sentences]
        words = content_words(passage.title).union(*sentence_words)
        prepared = _Prepared(passage, _Haystack.of(f"{passage.title}\n{passage.text}"), words,
                             sentences, sentence_words)
        with self._lock:
            self._prepared[key] = prepared
            while len(self._prepared) > self.PREPARED_KEPT:
                self._prepared.popitem(last=False)
        return prepared

    # --- while streaming ---------------------------------------------------------------------

    def feed(self, partial_answer: str, passages: Sequence[Passage]) -> int:
        """Embed, ahead of the check, the completed sentences of an answer still streaming and
        the candidate passage sentences they would be compared with. Returns how many texts
        were embedded (0 when everything needed was cached)."""
        sentences = split_sentences(partial_answer)
        complete = sentences[:-1]  # the last one may still grow
        plans = self._plans(complete, passages)  # (the passages are prepared for the check too)
        if self.embedder is None:
            return 0
        texts = [t for plan in plans for t in plan.texts()]
        missing = [t for t in dict.fromkeys(texts) if self._cache.get(t) is None]
        if missing:
            self._vectors(missing)
        return len(missing)

    # --- the check ---------------------------------------------------------------------------

    def check(self, answer: str, passages: Sequence[Passage]) -> Grounding:
        """The verdict of every claim in `answer` against the passages it cites."""
        sentences = split_sentences(answer)
        plans = self._plans(sentences, passages)
        if self.embedder is not None:
            self._vectors([t for plan in plans for t in plan.texts()])
        return Grounding(tuple(self._verdict(plan) for plan in plans), self.embedder is not None)

    def _plans(self, sentences: Sequence[Sentence], passages: Sequence[Passage]) -> list[_Plan]:
        by_n = {p.n: self._prepare(p) for p in passages}
        plans = []
        for s in sentences:
            if not is_claim(s):
                continue
            plans.append(_Plan.make(s, by_n, self.thresholds))
        return plans

    def _verdict(self, plan: _Plan) -> SentenceVerdict:
        s, t = plan.sentence, self.thresholds
        semantic = self.embedder is not None and plan.meaning
        best, closest = -1.0, None
        v = self._cache.get(plan.claim) if semantic else None
        for prep, idx in plan.compare:
            for i in idx:
                text = prep.sentences[i]
                w = self._cache.get(text) if v is not None else None
                score = float(np.dot(v, w)) if v is not None and w is not None \
                    else coverage(plan.words, prep.sentence_words[i])
                if closest is None or score > best:
                    best = score
                    closest = Closest(prep.passage.n, prep.passage.title, prep.passage.page, text, score,
                                      prep.passage.ref)
        if not s.citations:
            return self._out(plan, UNCITED, "no source is cited for this claim", plan.closest_any, 0.0)
        if not plan.cited:
            listed = ", ".join(f"[{n}]" for n in s.citations)
            return self._out(plan, NOT_SUPPORTED, f"it cites {listed}, which is not among the sources",
                             plan.closest_any, 0.0)
        where = ", ".join(f"[{n}]" for n in plan.cited_ok)
        if plan.missing:
            what = ", ".join(plan.missing[:4])
            verb = "does" if len(plan.missing) == 1 else "do"
            return self._out(plan, NOT_SUPPORTED, f"{what} {verb} not appear in {where}",
                             plan.closest_any, plan.lexical)
        if not plan.meaning and plan.lexical >= t.lexical_supported:
            return self._out(plan, SUPPORTED, f"its words are in {where}", closest, plan.lexical)
        if not plan.meaning and plan.lexical < t.lexical_unsupported:
            return self._out(plan, NOT_SUPPORTED, f"{where} hardly shares a word with it",
                             plan.closest_any, plan.lexical)
        if semantic:
            if best >= t.semantic_supported:
                return self._out(plan, SUPPORTED, f"{where} says this", closest, best)
            if best >= t.semantic_weak:
                return self._out(plan, WEAK, f"{where} says something close, not quite this",
                                 closest, best)
        elif plan.lexical >= t.lexical_weak:
            return self._out(plan, WEAK, f"many of its words are in {where}", closest, plan.lexical)
        return self._out(plan, NOT_SUPPORTED, f"nothing in {where} says this", plan.closest_any,
                         best if semantic else plan.lexical)

    @staticmethod
    def _out(plan: _Plan, verdict: str, reason: str, closest: Closest | None,
             score: float) -> SentenceVerdict:
        s = plan.sentence
        if verdict in (NOT_SUPPORTED, UNCITED) and closest is None and plan.compare:
            prep, idx = plan.compare[0]
            if idx:
                closest = Closest(prep.passage.n, prep.passage.title, prep.passage.page,
                                  prep.sentences[idx[0]], 0.0, prep.passage.ref)
        return SentenceVerdict(s.text, s.start, s.end, s.citations, verdict, max(score, 0.0), reason,
                               tuple(plan.missing), closest)


@dataclass
class _Plan:
    """What one sentence is compared with, decided from words alone before any model run."""

    sentence: Sentence
    claim: str
    words: set[str]
    cited: list[_Prepared]
    cited_ok: list[int]
    missing: list[str]
    lexical: float
    meaning: bool  # whether the words leave it open, so meaning must decide
    compare: list[tuple[_Prepared, list[int]]] = field(default_factory=list)
    closest_any: Closest | None = None  # by words, over every passage (for flagged sentences)

    @classmethod
    def make(cls, s: Sentence, by_n: Mapping[int, _Prepared], t: Thresholds) -> _Plan:
        claim = s.claim
        words = content_words(claim)
        cited = [by_n[n] for n in s.citations if n in by_n]
        missing = missing_facts(facts_of(claim), [p.haystack for p in cited]) if cited else []
        lexical = coverage(words, set().union(*(p.words for p in cited))) if cited else 0.0
        supported_by_words = lexical >= t.lexical_supported and len(words) >= 3
        unsupported_by_words = lexical < t.lexical_unsupported and len(words) >= 4
        meaning = bool(cited) and not missing and not supported_by_words and not unsupported_by_words
        plan = cls(s, claim, words, cited, [p.passage.n for p in cited], missing, lexical, meaning)
        for p in cited:
            ranked = sorted(range(len(p.sentences)), key=lambda i: -coverage(words, p.sentence_words[i]))
            plan.compare.append((p, ranked[:CANDIDATES] if meaning else ranked[:1]))
        best: tuple[float, _Prepared | None, int] = (0.0, None, -1)
        for p in by_n.values():
            for i, sw in enumerate(p.sentence_words):
                c = coverage(words, sw)
                if c > best[0]:
                    best = (c, p, i)
        if best[1] is not None:
            p = best[1]
            plan.closest_any = Closest(p.passage.n, p.passage.title, p.passage.page,
                                       p.sentences[best[2]], best[0], p.passage.ref)
        return plan

    def texts(self) -> list[str]:
        """What this sentence needs embedded: itself and its candidate passage sentences."""
        if not self.meaning:
            return []
        return [self.claim] + [p.sentences[i] for p, idx in self.compare for i in idx]
