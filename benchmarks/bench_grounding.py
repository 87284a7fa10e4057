"""The grounding check (issue 22): precision and recall of "not supported", and its time.

    .venv/bin/python benchmarks/bench_grounding.py [--split test|dev|all] [--json FILE]
        [--words-only] [--no-chat] [--repeat N] [--show]

The evaluation set is built from ../shared/data/docqa and ../shared/corpus. For each of the 60
questions, `benchmarks/data/grounding_claims.jsonl` holds a sentence written by hand that says
the reference answer in other words, as the answering page states it. The cited passage is the
chunk of that page (any chunk of the file for reflowable formats: EPUB, HTML, Markdown, XPS)
that holds the sentence's facts and most of its words, cut by RagDesk's own extractor and
chunker. Every item is a one-sentence answer with five passages: the cited one as [1] and four
chunks of other files (for "closest passage"). The variants, built mechanically:

- supported: the sentence, citing [1] (expected: supported or weakly supported);
- number: its first number changed (when it has one);
- name: its first name replaced by a name from another document (when it has one);
- other document: the sentence of a question about another file, cited as [1];
- no citation: the sentence without [1] (expected: uncited).

A flag is a verdict of "not supported" or "uncited"; precision and recall are those of the flag
over the four unsupported variants. Thresholds are chosen on the dev half (odd question ids) and
reported on the test half (even ids), `--split test` by default.

Time: the test items are put together into five-sentence answers (each sentence cites its own
passage among five) and the check is timed per answer: cold (nothing embedded before the check)
after `feed()` ran on the answer as it streamed; then each answer is streamed for real by the fake
Ollama (a scripted reply, through the official client) into ChatService, which prepares the check
while the answer streams and runs it when it is finished, as the GUI and `ragdesk ask` do.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ragdesk.core.grounding import (  # noqa: E402 - after the path set-up
    NOT_SUPPORTED,
    UNCITED,
    GroundingChecker,
    Passage,
    content_words,
    coverage,
    facts_of,
    missing_facts,
    passage_sentences,
)
from ragdesk.core.grounding import _Haystack as Haystack  # noqa: E402

REFLOWABLE = {".epub", ".html", ".xhtml", ".md", ".xps", ".mobi", ".fb2", ".txt"}
FLAGS = (NOT_SUPPORTED, UNCITED)
KINDS = ("supported", "number", "name", "other document", "no citation")


@dataclass(frozen=True)
class Item:
    qid: str
    kind: str
    sentence: str
    passages: tuple[Passage, ...]

    @property
    def positive(self) -> bool:
        return self.kind != "supported"

    @property
    def dev(self) -> bool:
        return int(self.qid[1:]) % 2 == 1


def cite(claim: str, n: int | None = 1) -> str:
    """The claim with `[n]` before its closing full stop (None: no citation)."""
    claim = claim.strip()
    end = ""
    if claim and claim[-1] in ".。!?":
        claim, end = claim[:-1], claim[-1]
    return f"{claim} [{n}]{end}" if n is not None else f"{claim}{end}"


def load_chunks(corpus: Path, files: set[str]) -> dict[str, tuple[str, list[tuple[int, int, str]]]]:
    from ragdesk.core.chunking import chunk
    from ragdesk.core.extract import extract

    out = {}
    for name in sorted(files):
        doc = extract(corpus / name)
        out[name] = (doc.title, [(c.page_start, c.page_end, c.text) for c in chunk(doc)])
    return out


def cited_chunk(claim: str, title: str, chunks: list[tuple[int, int, str]], pages: list[int],
                reflowable: bool) -> str:
    candidates = [c for c in chunks if reflowable or any(c[0] <= p <= c[1] for p in pages)] or chunks
    words = content_words(claim)
    facts = facts_of(claim)

    def key(c: tuple[int, int, str]) -> tuple[int, float]:
        return (-len(missing_facts(facts, [Haystack.of(f"{title}\n{c[2]}")])),
                coverage(words, content_words(c[2])))

    return max(candidates, key=key)[2]


def changed_number(claim: str, passage: str) -> str | None:
    """The claim with its first number (as written) changed to one the passage does not hold."""
    have = Haystack.of(passage)
    for m in re.finditer(r"(?<![\w.,])\d+(?:[.,]\d+)*", claim):
        token = m.group(0)
        digits = [i for i, ch in enumerate(token) if ch.isdigit()]
        for bump in (1, 2, 3, 5, 7):
            i = digits[-1]
            new = token[:i] + str((int(token[i]) + bump) % 10) + token[i + 1:]
            if i == 0 and new[0] == "0":
                continue
            from ragdesk.core.grounding import normalise_number
            if not have.has_number(normalise_number(new)):
                return claim[:m.start()] + new + claim[m.end():]
    return None


def swapped_name(claim: str, passage: str, donors: list[str]) -> str | None:
    names = [n for n in facts_of(claim).names if len(n) >= 3]
    have = Haystack.of(passage)
    for name in names:
        for donor in donors:
            if not have.has_name(donor) and donor.lower() != name.lower():
                swapped = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", donor, claim, count=1)
                if swapped != claim:
                    return swapped
    return None


def build(data: Path, corpus: Path, claims_file: Path) -> list[Item]:
    questions = [json.loads(line) for line in (data / "questions.jsonl").read_text().splitlines() if line]
    claims = {c["id"]: c["claim"] for c in
              (json.loads(line) for line in claims_file.read_text(encoding="utf-8").splitlines() if line)}
    docs = load_chunks(corpus, {q["file"] for q in questions})
    cited: dict[str, Passage] = {}
    for q in questions:
        title, chunks = docs[q["file"]]
        text = cited_chunk(claims[q["id"]], title, chunks, q["pages"],
                           Path(q["file"]).suffix.lower() in REFLOWABLE)
        cited[q["id"]] = Passage(1, text, title, q["pages"][0])
    by_id = {q["id"]: q for q in questions}
    ids = [q["id"] for q in questions]
    names_of = {i: [n for n in facts_of(claims[i]).names if len(n) >= 4 and n[0].isupper()] for i in ids}
    items: list[Item] = []
    for pos, qid in enumerate(ids):
        q = by_id[qid]
        others = [ids[(pos + k) % len(ids)] for k in range(1, len(ids))]
        others = [o for o in others if by_id[o]["file"] != q["file"]]
        passage = cited[qid]
        # Four passages of other files as [2]..[5], the same for every variant of the question.
        extra = tuple(Passage(k + 2, cited[o].text, cited[o].title, cited[o].page)
                      for k, o in enumerate(others[:4]))
        passages = (passage, *extra)
        claim = claims[qid]
        items.append(Item(qid, "supported", cite(claim), passages))
        number = changed_number(claim, passage.text)
        if number:
            items.append(Item(qid, "number", cite(number), passages))
        donors = [n for o in others for n in names_of[o]]
        name = swapped_name(claim, f"{passage.title}\n{passage.text}", donors)
        if name:
            items.append(Item(qid, "name", cite(name), passages))
        # Another file's claim, cited as this passage: picked seven questions on, so that it is
        # usually about another subject too (a question of the same file is skipped).
        other = others[6 % len(others)]
        items.append(Item(qid, "other document", cite(claims[other]), passages))
        items.append(Item(qid, "no citation", cite(claim, None), passages))
    return items


def score(items: list[Item], verdicts: list[str]) -> dict[str, Any]:
    tp = sum(1 for it, v in zip(items, verdicts, strict=True) if it.positive and v in FLAGS)
    fp = sum(1 for it, v in zip(items, verdicts, strict=True) if not it.positive and v in FLAGS)
    fn = sum(1 for it, v in zip(items, verdicts, strict=True) if it.positive and v not in FLAGS)
    by_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    for it, v in zip(items, verdicts, strict=True):
        by_kind[it.kind][v] += 1
    return {
        "items": len(items), "positives": sum(it.positive for it in items),
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "by_kind": {k: dict(c) for k, c in by_kind.items()},
    }


def answers_of(items: list[Item], size: int = 5) -> list[tuple[str, list[Passage]]]:
    """Five-sentence answers: each sentence cites its own passage, numbered 1..5."""
    out = []
    for start in range(0, len(items) - size + 1, size):
        group = items[start:start + size]
        sentences, passages = [], []
        for n, it in enumerate(group, start=1):
            p = it.passages[0]
            passages.append(Passage(n, p.text, p.title, p.page))
            sentences.append(it.sentence.replace("[1]", f"[{n}]"))
        out.append((" ".join(sentences), passages))
    return out


def timing(checker_factory: Any, answers: list[tuple[str, list[Passage]]], stream: bool,
           repeat: int) -> dict[str, float]:
    times = []
    for _ in range(repeat):
        for answer, passages in answers:
            checker = checker_factory()
            if stream:  # as the chat does: each completed sentence fed while the answer streams
                for m in re.finditer(r"\S+\s*", answer):
                    if m.group(0).rstrip().endswith((".", "。")):
                        checker.feed(answer[:m.end()], passages)
            t = time.perf_counter()
            checker.check(answer, passages)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"answers": len(times), "median_ms": statistics.median(times),
            "p95_ms": times[int(0.95 * (len(times) - 1))], "max_ms": times[-1]}


class _Passages:
    """A retriever that finds the given passages, whatever the question (the chat's `search`)."""

    def __init__(self) -> None:
        self.passages: list[Passage] = []

    def search(self, query: str, k: int = 8, **_: Any) -> list[Any]:
        from ragdesk.core.records import Hit

        return [Hit(chunk_id=1000 + p.n, document_id=p.n, collection_id=1, path=f"/corpus/{p.title}",
                    title=p.title, page=p.page, char_start=0, char_end=len(p.text), score=1.0 / p.n,
                    text=p.text) for p in self.passages[:k]]


def through_chat(embedder: Any, answers: list[tuple[str, list[Passage]]],
                 labels: list[list[bool]]) -> dict[str, Any]:
    """Each five-sentence answer streamed by the fake Ollama (scripted) through the official
    client into ChatService, as the GUI and the CLI ask: the check is prepared while the answer
    streams and run when it is finished. Times the final check (what the reader waits for
    after the last word) and the preparation spread over the stream."""
    import tempfile

    from ragdesk.core.chat import ChatService, ChatSettings
    from ragdesk.core.store.keys import KdfParams
    from ragdesk.core.store.sqlite import vault as vault_store
    from tests.fakes.ollama import FakeOllama

    class Timed(GroundingChecker):
        def __init__(self) -> None:
            super().__init__(embedder)
            self.check_ms = 0.0
            self.feed_ms = 0.0

        def check(self, answer: str, passages: Any) -> Any:
            t = time.perf_counter()
            try:
                return super().check(answer, passages)
            finally:
                self.check_ms += (time.perf_counter() - t) * 1000

        def feed(self, partial: str, passages: Any) -> int:
            t = time.perf_counter()
            try:
                return super().feed(partial, passages)
            finally:
                self.feed_ms += (time.perf_counter() - t) * 1000

    finals, feeds, agree, total = [], [], 0, 0
    with tempfile.TemporaryDirectory() as home, FakeOllama() as fake:
        store = vault_store.create(Path(home), "benchmark", kdf=KdfParams.fresh(memory_kib=8192, iterations=1,
                                                                               lanes=1))
        retriever = _Passages()
        try:
            for (answer, passages), expected in zip(answers, labels, strict=True):
                retriever.passages = passages
                checker = Timed()
                chat = ChatService(store, retriever,  # type: ignore[arg-type]
                                   ChatSettings(host=fake.host, model="llama3.2:3b"), grounder=checker)
                fake.script(answer)
                done = list(chat.ask("What do the sources say?"))[-1]
                got = [s["verdict"] in FLAGS for s in (done.grounding or {}).get("sentences", [])]
                agree += sum(g == e for g, e in zip(got, expected, strict=False))
                total += len(expected)
                finals.append(checker.check_ms)
                feeds.append(checker.feed_ms)
        finally:
            store.lock()
    finals.sort()
    return {"answers": len(finals), "final_median_ms": statistics.median(finals),
            "final_p95_ms": finals[int(0.95 * (len(finals) - 1))],
            "while_streaming_median_ms": statistics.median(feeds),
            "verdicts_as_expected": agree / total if total else 1.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "docqa")
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--claims", type=Path, default=ROOT / "benchmarks" / "data" / "grounding_claims.jsonl")
    ap.add_argument("--split", choices=("dev", "test", "all"), default="test")
    ap.add_argument("--words-only", action="store_true", help="no embedder: words and facts only")
    ap.add_argument("--repeat", type=int, default=3, help="timing rounds over the answers")
    ap.add_argument("--show", action="store_true", help="print every wrong verdict")
    ap.add_argument("--no-chat", action="store_true", help="skip the run through ChatService")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    items = build(args.data, args.corpus, args.claims)
    print(f"evaluation set: {len(items)} sentences from 60 questions "
          f"({time.perf_counter() - t0:.1f} s to extract and chunk the corpus)")
    embedder = None
    if not args.words_only:
        from ragdesk.core.embedding import BuiltinEmbedder
        embedder = BuiltinEmbedder()
        embedder.embed(["warm up the session"])
    chosen = [it for it in items if args.split == "all" or it.dev == (args.split == "dev")]
    checker = GroundingChecker(embedder)
    verdicts = []
    for it in chosen:
        g = checker.check(it.sentence, list(it.passages))
        v = g.sentences[0].verdict if g.sentences else "no claim"
        verdicts.append(v)
        wrong = (v in FLAGS) != it.positive
        if args.show and wrong:
            s = g.sentences[0] if g.sentences else None
            print(f"  {it.qid} {it.kind:14} -> {v:16} {s.score if s else 0:.2f} {s.reason if s else ''}"
                  f"\n      {it.sentence}")
    result = score(chosen, verdicts)
    print(f"\nsplit: {args.split} ({len(chosen)} sentences, {result['positives']} unsupported), "
          f"{'words and facts only' if embedder is None else 'built-in embedder'}")
    print(f"'not supported' (incl. uncited): precision {result['precision']:.3f}, "
          f"recall {result['recall']:.3f}")
    for kind, counts in result["by_kind"].items():
        print(f"  {kind:15} " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())))

    def fresh() -> GroundingChecker:
        return GroundingChecker(embedder)

    answers = answers_of(chosen)
    passage_sents = statistics.mean(len(passage_sentences(p.text)) for _, ps in answers for p in ps)
    cold = timing(fresh, answers, stream=False, repeat=args.repeat)
    warm = timing(fresh, answers, stream=True, repeat=args.repeat)
    # The common case: every sentence a paraphrase of its passage (more of them need the model).
    supported = answers_of([it for it in chosen if it.kind == "supported"])
    cold_supported = timing(fresh, supported, stream=False, repeat=args.repeat)
    if embedder is not None:  # what the machine gives right now: the model run the check is made of
        probe = [it.sentence for it in chosen if it.kind == "supported"][:5]
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            embedder.embed(probe)
            runs.append((time.perf_counter() - t) * 1000)
        print(f"\nthe built-in embedder on five answer sentences at this moment: median "
              f"{statistics.median(runs):.1f} ms (min {min(runs):.1f})")
    print(f"\ntime per five-sentence answer ({cold['answers']} checks; passages of "
          f"{passage_sents:.1f} sentences on average):")
    print(f"  cold (nothing embedded before):       median {cold['median_ms']:.1f} ms, "
          f"p95 {cold['p95_ms']:.1f} ms, max {cold['max_ms']:.1f} ms")
    print(f"  cold, five supported sentences:       median {cold_supported['median_ms']:.1f} ms, "
          f"p95 {cold_supported['p95_ms']:.1f} ms, max {cold_supported['max_ms']:.1f} ms "
          f"({cold_supported['answers']} checks)")
    print(f"  streamed (feed() while it was coming): median {warm['median_ms']:.1f} ms, "
          f"p95 {warm['p95_ms']:.1f} ms, max {warm['max_ms']:.1f} ms")
    chat = None
    if not args.no_chat:
        labels = [[it.positive for it in chosen[i:i + 5]] for i in range(0, len(chosen) - 4, 5)]
        chat = through_chat(embedder, answers, labels)
        print(f"  through the chat (fake Ollama streaming, {chat['answers']} answers): final check median "
              f"{chat['final_median_ms']:.1f} ms, p95 {chat['final_p95_ms']:.1f} ms; prepared while "
              f"streaming: median {chat['while_streaming_median_ms']:.1f} ms per answer; verdicts as "
              f"expected for {chat['verdicts_as_expected']:.1%} of the sentences")
    if args.json:
        args.json.write_text(json.dumps({"accuracy": result, "cold": cold, "cold_supported": cold_supported,
                                         "streamed": warm, "chat": chat}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
