"""Does a question in a conversation depend on the turns before it, and what should be searched?

A new question is searched alone unless it cannot be understood without the previous one; only
then are the previous question's content words folded into the search. The decision is a few
explainable rules, no model, in English and German:

- an **unresolved reference**: a third-person pronoun or demonstrative ("it", "its", "they",
  "this", "those", "es", "sie", "dies", ...) with no content word before it in the question to
  stand for ("Does it support EPUB 3?" depends; "Is it safe to change a path object while code
  holds a reference to it?" does not: "it is safe to" is expletive and the second "it" has
  "path object" before it), or "the same", "instead";
- **ellipsis**: the question opens with "and", "also", "what about", "how about", "same for",
  "und", "was ist mit", ..., or has no content word of its own ("Why?", "Which page?");
- a **page or section reference** ("page 3", "the next section", "Seite 4") in a question that
  does not name its own subject (a name or several words the previous turn did not have):
  "What mutool command pulls pages 1 to 10 out of a PDF?" names its own.

A question that names its own subject and has none of these searches alone: "What is Cython
used for?" after a question about MuPDF is a new topic.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass


def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Question words, auxiliaries, articles, prepositions, generic verbs: words that name no subject.
_FUNCTION_WORDS = _vocabulary("""
a an the and or but nor so if then than as at by for from in into of off on onto out over to up
with within without about above after against along among around before behind below beneath
beside between beyond during except inside near per since through throughout toward towards under
until upon via
what which who whom whose when where why how whether
is are was were be been being am do does did done doing have has had having can could shall should
will would may might must need needs ought 's 're 've 'd 'll
i me my mine myself you your yours yourself we us our ours
not no yes any some all each every both either neither few many much more most less least
other others another such only own same very just also too really again further else
tell explain say says said mean means meaning show shows give gives know let please describe
get gets got find found happen happens happened work works go goes way ways thing things
there here now one ones anything something everything nothing
der die das den dem des ein eine einer eines einem einen und oder aber auch nur noch schon
ist sind war waren sein bin bist wird werden wurde wurden hat haben hatte kann können konnte
muss müssen soll sollen darf will wollen mag
was wer wen wem wessen wann wo warum wieso weshalb wie welche welcher welches welchen welchem
woher wohin womit wofür worüber
ich mich mir du dich dir wir uns ihr euch man mein meine dein deine unser unsere
in im an am auf aus bei mit nach von vom zu zum zur für über unter vor hinter neben zwischen
durch gegen ohne um bis seit ab
nicht kein keine keinen ja nein sehr mehr gibt geben steht stehen bedeutet heißt genau bitte
erklären erkläre erklärt sagen sag sagt zeigen zeig zeigt beschreiben beschreibe
""")

# Pronouns and demonstratives that stand for something said before.
_REFERENCES = _vocabulary("""
it its itself they them their theirs themselves he him his himself she her hers herself
this that these those there
das es sie er ihn ihm ihr ihre ihren ihrem ihrer sein seine seinen seinem seiner
dies diese dieser dieses diesen diesem dessen deren dort dabei dazu davon darin darüber damit
""")
_POSSESSIVES = _vocabulary("""its their theirs his her hers ihr ihre ihren ihrem ihrer sein seine seinen
seinem seiner dessen deren""")
_DEMONSTRATIVES = _vocabulary("this that these those das dies diese dieser dieses diesen diesem")
_AUXILIARIES = _vocabulary("""is are was were do does did can could will would should shall may might
must has have had ist sind war waren hat haben hatte kann können konnte wird werden wurde soll
sollen muss müssen""")
_DETERMINERS = _vocabulary("""a an the my your our his its their this that these those some any each
every no der die das dem den des ein eine einer einem einen eines""")
_PAGE_WORDS = _vocabulary("page pages p pp section sections chapter chapters seite seiten s abschnitt"
                          " kapitel")
_NOT_CONTENT = _FUNCTION_WORDS | _REFERENCES | _PAGE_WORDS
_MARKERS = ("the same", "instead", "dasselbe", "das gleiche", "das selbe", "stattdessen")
# "do that", "does so", "did this": a verb standing for something said before.
_PRO_VERB = re.compile(r"\b(?:do|does|did|doing|done)\s+(?:that|this|so)\b", re.IGNORECASE)

# Openings that continue the previous question ("and page 3?", "what about its license?").
_ELLIPTICAL_START = re.compile(
    r"^(?:and|also|or|but|plus|what about|how about|what of|same for|same with|same question"
    r"|likewise|similarly|und|auch|oder|aber|was ist mit|wie ist es mit|wie steht es mit"
    r"|und was|dasselbe für|das gleiche für|gleiches für)\b",
    re.IGNORECASE,
)
_WHAT_ABOUT = re.compile(r"^(?:and\s+)?(?:what about|how about|what of)\b", re.IGNORECASE)
# "is it safe to", "it is possible that", "is there", "what time is it", "gibt es", "ist es
# möglich, ... zu": no reference at all.
_EXPLETIVE = re.compile(
    r"\b(?:(?:is|was|isn't|wasn't)\s+it\s+\w+\s+(?:to|that|if|when|for)"
    r"|it(?:\s+is|'s|\s+was)\s+\w+\s+(?:to|that|if|when|for)"
    r"|(?:is|are|was|were)\s+there|there(?:\s+is|\s+are|'s|\s+was|\s+were)"
    r"|(?:does|did|will|would)\s+it\s+take|(?:what|which)\s+(?:time|day|date|year)\s+is\s+it"
    r"|(?:ist|war)\s+es\s+\w+,?\s+(?:zu|dass|ob|wenn)|es\s+(?:ist|war)\s+\w+,?\s+(?:zu|dass|ob|wenn)"
    r"|wie\s+spät\s+ist\s+es|gibt\s+es|es\s+gibt|geht\s+es\s+um)\b",
    re.IGNORECASE,
)
_PAGE_REF = re.compile(
    r"\b(?:pages?|pp?\.|seiten?|s\.)\s*\d{1,5}\b"
    r"|\b(?:next|previous|following|preceding|last|same|that|this|other)\s+"
    r"(?:page|section|chapter|paragraph|table|figure)\b"
    r"|\b(?:nächsten?|vorigen?|vorherigen?|folgenden?|gleichen?|selben|dieser|diesem)\s+"
    r"(?:seite|abschnitt|kapitel|tabelle)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+(?:[.'’\-]\w+)*")
# "that" before a clause ("know that the page ...", "so that the objects ...") joins, not refers.
_CLAUSE_START = _vocabulary("the a an my your our its their i you we it they he she there this")
# A question that brings this many content words the previous turn did not have names its subject.
OWN_SUBJECT_WORDS = 4
FOLDED_WORDS_MAX = 16  # content words carried from earlier turns into the search
CHAIN_MAX = 6  # earlier questions looked at: a follow-up of a follow-up of ...


@dataclass(frozen=True)
class FollowUp:
    """The decision for one question: does it depend on the previous turn, and why."""

    depends: bool
    reason: str
    page_reference: bool = False  # it names a page or section of the documents cited before


def words(text: str) -> list[str]:
    """The question's words in order, as typed (numbers, versions and identifiers kept whole)."""
    return _WORD.findall(text)


def content_words(text: str) -> list[str]:
    """The words that name something: neither function words nor references nor bare numbers."""
    return [w for w in words(text) if w.lower() not in _NOT_CONTENT
            and (_is_name(w) or (len(w) > 1 and not w.isdigit()))]


def _is_name(word: str) -> bool:
    """A proper name or an identifier: "Cython", "PyMuPDF", "fz_try", "1.10", "EPUB"."""
    if any(ch.isdigit() for ch in word) and not word.isdigit():
        return True
    return "_" in word or (word[:1].isupper() and word.lower() not in _FUNCTION_WORDS
                           and word.lower() not in _REFERENCES)


def _unresolved_reference(question: str) -> str | None:
    """The first pronoun or demonstrative that nothing before it in the question can stand for.

    A possessive ("its reference guide"), a demonstrative ("these observations", "Why is that?")
    or a subject pronoun after an auxiliary ("did they", "does it", "hat es") needs a name before
    it ("In the MuPDF book, ... its value"); any other pronoun needs a name or a noun after an
    article before it ("change a path object ... a reference to it"; not "Who wrote them?")."""
    tokens = words(_EXPLETIVE.sub(" ", question))
    seen_noun = seen_name = False
    for i, word in enumerate(tokens):
        low = word.lower()
        before = tokens[i - 1].lower() if i else ""
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        if low in _REFERENCES:
            if low in ("that", "das") and before and before not in _FUNCTION_WORDS:
                continue  # the relative pronoun: "the function that renders", "das Buch, das"
            if low == "that" and following.lower() in _CLAUSE_START:
                continue  # the conjunction: "know that the page ..."
            if low == "sie" and word == "Sie" and i > 0:
                continue  # the polite "you", not "they"
            if low == "das" and following[:1].isupper():
                continue  # the article: German nouns are capitalised ("das Heft")
            strong = low in _POSSESSIVES or low in _DEMONSTRATIVES or before in _AUXILIARIES
            if not (seen_name if strong else seen_name or seen_noun):
                return word
            continue
        if low not in _FUNCTION_WORDS and low not in _PAGE_WORDS and not low.isdigit():
            seen_noun = seen_noun or before in _DETERMINERS
            seen_name = seen_name or _is_name(word)
    return None


def decide(question: str, previous: str | None) -> FollowUp:
    """Whether `question` depends on `previous` (the question asked before it, or None)."""
    if not previous or not previous.strip():
        return FollowUp(False, "first question")
    text = " ".join(question.split())
    lowered = text.lower()
    own = content_words(text)
    before = {w.lower() for w in content_words(previous)}
    new = [w for w in own if w.lower() not in before]
    page = bool(_PAGE_REF.search(text))
    start = _ELLIPTICAL_START.match(text)
    if start:
        return FollowUp(True, f"continues the previous question ('{start.group(0)}')", page)
    pronoun = _unresolved_reference(text)
    if pronoun:
        return FollowUp(True, f"'{pronoun}' refers to something said before", page)
    pro_verb = _PRO_VERB.search(text)
    if pro_verb:
        return FollowUp(True, f"'{pro_verb.group(0)}' refers to something said before", page)
    for marker in _MARKERS:
        if re.search(rf"\b{marker}\b", lowered):
            return FollowUp(True, f"'{marker}' refers to something said before", page)
    if not own:
        return FollowUp(True, "no word of its own names a subject", page)
    names_subject = any(_is_name(w) for w in new) or len(new) >= OWN_SUBJECT_WORDS
    if page and not names_subject:
        return FollowUp(True, "refers to a page or section of the documents discussed", True)
    return FollowUp(False, "names its own subject")


def search_query(question: str, previous_questions: Sequence[str]) -> tuple[str, FollowUp]:
    """The text to search for `question`, given the user's earlier questions (oldest first), and
    the decision behind it. A follow-up of a follow-up carries what its own search carried."""
    query, decision = _resolve(question, list(previous_questions)[-CHAIN_MAX:])
    return query, decision


def _resolve(question: str, earlier: list[str]) -> tuple[str, FollowUp]:
    question = " ".join(question.split())
    if not earlier:
        return question, decide(question, None)
    decision = decide(question, earlier[-1])
    if not decision.depends:
        return question, decision
    carried, _ = _resolve(earlier[-1], earlier[:-1])
    folded = [w for w in words(carried) if w.lower() not in _FUNCTION_WORDS | _REFERENCES
              and (_is_name(w) or (len(w) > 1 and not w.isdigit()))]
    if _WHAT_ABOUT.match(question) and any(_is_name(w) for w in content_words(question)):
        # "What about Cython?" asks the same of a new subject: the old subject's names go. Only
        # the English openings: German capitalises every noun, so a capital marks no name there.
        folded = [w for w in folded if not _is_name(w)]
    mine = {w.lower() for w in words(question)}
    kept = list(dict.fromkeys(w for w in folded if w.lower() not in mine))[-FOLDED_WORDS_MAX:]
    return (" ".join([*kept, question]) if kept else question), decision
