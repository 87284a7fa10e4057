"""`ragdesk index`, `sync`, `search` and `ask`: filling the library and asking it questions.

Indexing shows a progress bar on a terminal and a summary at the end (or JSON, with the seconds
each stage took, the slowest files and the pages read only in part); with --verbose it logs the
file and page in work and each file's time. Search prints
ranked passages, `ask` streams the answer and then its sources.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ragdesk.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    Subcommands,
    add_command,
    first_interrupt_cancels,
    notice,
    open_services,
)
from ragdesk.errors import RagdeskError, UsageError

if TYPE_CHECKING:
    from tqdm import tqdm

    from ragdesk.core.indexing import Indexer, Progress
    from ragdesk.core.records import Hit
    from ragdesk.core.retrieval import Retriever
    from ragdesk.core.store.base import Store

log = logging.getLogger("ragdesk.cli.index")

# --- index, sync ---------------------------------------------------------------------------------


def _run_indexing(args: argparse.Namespace, job_name: str,
                  start: Callable[[Indexer], Iterator[Progress]]) -> int:
    """Drive an indexing generator: a progress bar on a terminal, a summary at the end.

    The first Ctrl+C asks the indexer to stop between steps (what is indexed is kept and the
    summary says so); a second one interrupts at once."""
    from ragdesk.core.indexing import Progress

    services = open_services(args, batch=True)
    try:
        indexer = services.indexer(**_index_options(args))
        show_bar = not args.json and sys.stderr.isatty()
        bar = None
        last = Progress()
        told = _Told()
        try:
            with first_interrupt_cancels(indexer.cancel):
                for last in start(indexer):
                    if show_bar:
                        bar = _progress_bar(bar, last)
                    if args.verbose:
                        told.tell(last)
        finally:
            if bar is not None:
                bar.close()
        _report(args, last, job_name)
        if last.cancelled:
            notice(f"interrupted; the {last.indexed} documents indexed in this run are kept")
            return EXIT_INTERRUPTED
    finally:
        services.close()
    return EXIT_OK


def _index_options(args: argparse.Namespace) -> dict[str, object]:
    from ragdesk.core.extract import Limits

    options: dict[str, object] = {}
    if getattr(args, "collection", None):
        options["collection"] = args.collection
    if getattr(args, "workers", None) is not None:
        options["workers"] = args.workers
    if getattr(args, "max_file_mb", None):
        options["limits"] = Limits(max_file_bytes=int(args.max_file_mb * 2**20))
    if getattr(args, "retry_failed", False):
        options["retry_failed"] = True
    return options


class _Told:
    """With --verbose: each file's time as it is done, and which file and page is in work
    (when that changes, at most every few seconds per file)."""

    EVERY = 3.0  # seconds between two lines about the same file in work

    def __init__(self) -> None:
        self.outcomes = 0
        self.working: dict[str, tuple[int, str, float]] = {}  # path -> (page, step, said at)

    def tell(self, p: Progress) -> None:
        for o in p.outcomes[self.outcomes:]:
            took = f" in {o.seconds:.1f} s" if o.seconds else ""
            what = f"{o.pages} pages, {o.chunks} chunks" if o.status == "indexed" else (o.reason or "")
            log.info("%s: %s (%s)%s", o.status, o.path, what, took)
            for d in o.degraded:
                log.info("  read in part: %s", d.describe())
            self.working.pop(o.path, None)
        self.outcomes = len(p.outcomes)
        now = time.monotonic()
        for w in p.in_work:
            said = self.working.get(w.path)
            if said is not None and (said[:2] == (w.page, w.step) or now - said[2] < self.EVERY):
                continue
            self.working[w.path] = (w.page, w.step, now)
            where = f"page {w.page} of {w.pages}, {w.step}" if w.page else "opening"
            log.info("in work: %s: %s (%.0f s)", w.path, where, w.seconds)


def _progress_bar(bar: tqdm[Any] | None, p: Progress) -> tqdm[Any]:
    from tqdm import tqdm

    if bar is None:
        bar = tqdm(total=p.files_total, unit="file", file=sys.stderr, dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} files"
                              " [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
    bar.total = p.files_total
    bar.n = p.files_done
    bar.set_postfix_str(f"{p.pages} pages, {p.chunks} chunks, {p.failed + p.unsupported} failed",
                        refresh=False)
    bar.refresh()
    return bar


def _report(args: argparse.Namespace, p: Progress, job_name: str) -> None:
    by_status: dict[str, list[Any]] = {}
    for o in p.outcomes:
        by_status.setdefault(o.status, []).append(o)
    if args.json:
        print(json.dumps({
            "indexed": [{"path": o.path, "pages": o.pages, "chunks": o.chunks,
                         "seconds": round(o.seconds, 3),
                         **({"warning": o.reason} if o.reason else {}),
                         **({"degraded": [d.as_json() for d in o.degraded]} if o.degraded else {})}
                        for o in by_status.get("indexed", [])],
            "unchanged": [o.path for o in by_status.get("unchanged", [])],
            "failed": [_failure(o) for o in by_status.get("failed", [])],
            "unsupported": [_failure(o) for o in by_status.get("unsupported", [])],
            "removed": [o.path for o in by_status.get("removed", [])],
            "pages": p.pages,
            "chunks": p.chunks,
            "degraded_pages": p.degraded_pages,
            "seconds": round(p.elapsed, 3),
            # Parsing and OCR are summed over the parser processes (OCR is part of parsing).
            "stages": {"parsing": round(p.seconds_parsing, 3), "ocr": round(p.seconds_ocr, 3),
                       "embedding": round(p.seconds_embedding, 3),
                       "storing": round(p.seconds_storing, 3)},
            "slowest": [{"path": o.path, "seconds": round(o.seconds, 3), "status": o.status}
                        for o in p.slowest(5)],
            "cancelled": p.cancelled,
        }, indent=2, ensure_ascii=False))
        return
    line = (f"{job_name}: {p.indexed} indexed ({p.pages} pages, {p.chunks} chunks), "
            f"{p.unchanged} unchanged, {p.failed} failed, {p.unsupported} unsupported")
    if p.removed:
        line += f", {p.removed} removed"
    print(f"{line} in {p.elapsed:.1f} s")
    if p.degraded_pages:
        print(f"  {p.degraded_pages} page(s) read only in part (a step took too long):")
        for o in p.outcomes:
            for d in o.degraded:
                print(f"    {o.path}: {d.describe()}")
    for status in ("failed", "unsupported"):
        for o in by_status.get(status, []):
            print(f"  {status}: {o.path}: {o.reason}" + ("" if o.read else " (unchanged, not read again)"))
    if any(not o.read for o in p.outcomes):
        print("  files that failed before and have not changed are not read again;"
              " --retry-failed reads them")


def _failure(o: Any) -> dict[str, Any]:
    """A failed file in the JSON summary; "unchanged": it failed before and was not read again."""
    return {"path": o.path, "reason": o.reason, **({} if o.read else {"unchanged": True}),
            **({"seconds": round(o.seconds, 3)} if o.seconds else {})}


def cmd_index(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:
        raise RagdeskError(f"no such file or folder: {missing[0]}")
    return _run_indexing(args, "index", lambda ix: ix.run(args.paths))


def cmd_sync(args: argparse.Namespace) -> int:
    return _run_indexing(args, "sync", lambda ix: ix.sync())


# --- search, ask ---------------------------------------------------------------------------------


def _hit_json(hit: Hit) -> dict[str, object]:
    return {
        "path": hit.path, "title": hit.title, "page": hit.page, "score": round(hit.score, 6),
        "text": hit.text, "snippet": hit.snippet, "heading": hit.heading,
        "document_id": hit.document_id, "chunk_id": hit.chunk_id,
        "char_start": hit.char_start, "char_end": hit.char_end,
    }


def _collection_ids(store: Store, names: list[str] | None) -> list[int] | None:
    if not names:
        return None
    ids = []
    for name in names:
        coll = store.collection(name, create=False)
        if coll is None:
            known = ", ".join(c.name for c in store.collections()) or "none yet"
            raise RagdeskError(f"no collection named {name!r} (collections: {known})")
        ids.append(coll.id)
    return ids


def cmd_search(args: argparse.Namespace) -> int:
    if args.batch is None and args.query is None:
        raise UsageError("give a QUERY, or --batch FILE")
    if args.k < 1:
        raise UsageError("-k must be at least 1")
    services = open_services(args)
    try:
        collections = _collection_ids(services.store, args.collection)
        retriever = services.retriever(mode=args.mode)
        if args.batch is not None:
            return _search_batch(args, retriever, collections)
        hits = retriever.search(args.query, k=args.k, collection_ids=collections)
        if args.json:
            print(json.dumps({"query": args.query, "hits": [_hit_json(h) for h in hits]},
                             indent=2, ensure_ascii=False))
            return EXIT_OK
        if not hits:
            print("No matching passages.")
            return EXIT_OK
        bold = sys.stdout.isatty()
        for rank, hit in enumerate(hits, start=1):
            where = f"p. {hit.page}" if hit.page else ""
            print(f"{rank}. {hit.title}  {where}  ({hit.path})")
            print(f"   {_marked(hit.snippet, hit.marks, bold)}")
        return EXIT_OK
    finally:
        services.close()


def _marked(text: str, marks: Sequence[tuple[int, int]], bold: bool) -> str:
    if not bold:
        return text
    out, last = [], 0
    for start, end in marks:
        out += [text[last:start], "\033[1m", text[start:end], "\033[0m"]
        last = end
    out.append(text[last:])
    return "".join(out)


def _search_batch(args: argparse.Namespace, retriever: Retriever,
                  collections: list[int] | None) -> int:
    """JSON lines in ({"id", "query"}), JSON lines out ({"id", "hits"}), one model load."""
    source = sys.stdin if args.batch == "-" else None
    try:
        handle = source or open(args.batch, encoding="utf-8")  # noqa: SIM115 - stdin is not ours to close
    except OSError as exc:
        raise RagdeskError(f"cannot read {args.batch}: {exc.strerror}") from exc
    bad = 0
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                query = item["query"]
                if not isinstance(query, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                bad += 1
                print(json.dumps({"id": None, "line": number,
                                  "error": 'not a JSON object with a "query" string'}), flush=True)
                continue
            hits = retriever.search(query, k=args.k, collection_ids=collections)
            print(json.dumps({"id": item.get("id"), "hits": [
                {"path": h.path, "title": h.title, "page": h.page, "score": round(h.score, 6),
                 "text": h.text} for h in hits]}, ensure_ascii=False), flush=True)
    if bad:
        notice(f"{bad} line(s) of {args.batch} were not queries (reported in the output)")
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    question = " ".join(args.question).strip()
    if not question:
        raise UsageError("ask what? give a QUESTION")
    services = open_services(args)
    try:
        store = services.store
        collections = _collection_ids(store, args.collection)
        if args.conversation is not None and store.conversation(args.conversation) is None:
            raise RagdeskError(f"no conversation {args.conversation}")
        chat = services.chat(model=args.model)
        done = None
        try:
            for event in chat.ask(question, conversation_id=args.conversation,
                                  collection_ids=collections):
                if event.kind == "token" and not args.json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif event.kind == "notice" and not args.json:
                    print(file=sys.stderr)
                    notice(str(event.notice))
                elif event.kind == "done":
                    done = event
        except KeyboardInterrupt:
            chat.cancel()
            print(file=sys.stderr)
            notice("stopped; the partial answer is kept in the conversation")
            return EXIT_INTERRUPTED
        assert done is not None
        if args.json:
            print(json.dumps({
                "answer": done.answer, "mode": done.mode, "model": done.model,
                "status": done.status, "notice": done.notice,
                "citations": [{k: c[k] for k in ("n", "path", "title", "page", "text")}
                              for c in done.citations],
                "conversation": done.conversation_id,
                # Each sentence held against its sources (issue 22); null for an extractive answer.
                "grounding": done.grounding,
            }, indent=2, ensure_ascii=False))
            return EXIT_OK
        print()
        if done.citations:
            print("\nSources:")
            for c in done.citations:
                page = f", p. {c['page']}" if c.get("page") else ""
                print(f"  [{c['n']}] {c['title']}{page} — {c['path']}")
        _print_grounding(done.grounding)
        print(f"\n(conversation {done.conversation_id};"
              f" continue with --conversation {done.conversation_id})")
        return EXIT_OK
    finally:
        services.close()


def _print_grounding(grounding: dict[str, Any] | None) -> None:
    """The check of the answer: how many sentences its sources support, and each one they do not."""
    if not grounding or not grounding.get("summary"):
        return
    print(f"\nCheck: {grounding['summary']}")
    for s in grounding["sentences"]:
        if s["verdict"] in ("not supported", "uncited"):
            why = "uncited claim" if s["verdict"] == "uncited" else f"not supported: {s['reason']}"
            print(f"  ! {s['text']}\n    {why}")
            closest = s.get("closest")
            if closest:
                print(f"    closest: [{closest['n']}] {closest['title']}, p. {closest['page']}: "
                      f"{closest['text'][:160]}")


def register(commands: Subcommands) -> None:
    p = add_command(commands, "index", cmd_index, "index files and folders (recursively) into the vault")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--collection", metavar="NAME", help="collection to index into (default: default)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--workers", type=int, metavar="N", help="parser processes (0: parse in-process)")
    p.add_argument("--max-file-mb", type=float, metavar="MB",
                   help="skip files larger than this (default 200)")
    p.add_argument("--retry-failed", action="store_true",
                   help="read unchanged files that could not be indexed before again")
    p = add_command(commands, "sync", cmd_sync,
                    "re-scan every collection's folders: index new and changed files, drop removed ones")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--workers", type=int, metavar="N", help="parser processes (0: parse in-process)")
    p.add_argument("--retry-failed", action="store_true",
                   help="read unchanged files that could not be indexed before again")
    p = add_command(commands, "search", cmd_search, "find the passages that best match a query")
    p.add_argument("query", nargs="?", metavar="QUERY")
    p.add_argument("-k", type=int, default=10, metavar="N", help="how many hits (default 10)")
    p.add_argument("--collection", action="append", metavar="NAME",
                   help="search only this collection (repeatable)")
    p.add_argument("--mode", choices=["hybrid", "keyword", "vector"], default="hybrid")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--batch", metavar="FILE",
                   help='JSON lines {"id", "query"} in ("-" for stdin), JSON lines out')
    p = add_command(commands, "ask", cmd_ask, "ask a question; the answer streams, with its sources")
    p.add_argument("question", nargs="+", metavar="QUESTION")
    p.add_argument("--model", metavar="M", help="Ollama chat model (default: the vault's setting)")
    p.add_argument("--collection", action="append", metavar="NAME",
                   help="ask only this collection (repeatable)")
    p.add_argument("--conversation", type=int, metavar="ID", help="continue this conversation")
    p.add_argument("--json", action="store_true", help="print the answer and citations as JSON")
