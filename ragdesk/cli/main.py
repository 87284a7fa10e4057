"""The command line: thin sub-commands over the core. No sub-command starts the GUI.

Exit codes: 0 success, 1 a failure explained in one line on stderr, 2 wrong usage.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from ragdesk import __version__, paths
from ragdesk.core.store.sqlite import vault as vault_store
from ragdesk.core.units import format_bytes
from ragdesk.errors import RagdeskError, UsageError

log = logging.getLogger("ragdesk.cli.main")

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors; keep that
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ragdesk: {message}\n")


def _read_secret_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise RagdeskError(f"cannot read the passphrase file {path}: {exc.strerror}") from exc


def passphrase(args: argparse.Namespace, prompt: str = "Passphrase: ") -> str:
    """From --passphrase-file, else $RAGDESK_PASSPHRASE, else a hidden prompt on a terminal."""
    if args.passphrase_file:
        return _read_secret_file(args.passphrase_file)
    if "RAGDESK_PASSPHRASE" in os.environ:
        return os.environ["RAGDESK_PASSPHRASE"]
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise UsageError(
        "no passphrase: set RAGDESK_PASSPHRASE, pass --passphrase-file FILE or run on a terminal"
    )


def _new_passphrase(args: argparse.Namespace, file_attr: str, env: str) -> str:
    path = getattr(args, file_attr, None)
    if path:
        return _read_secret_file(path)
    if env in os.environ:
        return os.environ[env]
    if sys.stdin.isatty():
        first = getpass.getpass("New passphrase: ")
        if first != getpass.getpass("Repeat it: "):
            raise RagdeskError("the two passphrases differ; nothing was changed")
        return first
    raise UsageError(f"no new passphrase: set {env} or pass --{file_attr.replace('_', '-')} FILE")


def home_of(args: argparse.Namespace) -> Path:
    return paths.home(args.home)


def database_url(args: argparse.Namespace) -> str | None:
    """--database, else $RAGDESK_DATABASE_URL: a PostgreSQL team server instead of the vault."""
    url = getattr(args, "database", None) or os.environ.get("RAGDESK_DATABASE_URL") or None
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise UsageError("--database takes a postgresql://... URL")
    return url


def open_postgres(args: argparse.Namespace, create: bool = False):  # type: ignore[no-untyped-def]
    """The PostgreSQL store (psycopg is imported only when a database is asked for)."""
    try:
        from ragdesk.core.store import postgres
    except ImportError as exc:
        raise RagdeskError(
            "the PostgreSQL backend needs psycopg: pip install 'ragdesk[postgres]'") from exc
    index = os.environ.get("RAGDESK_PG_VECTOR_INDEX", "hnsw")
    return postgres.connect(database_url(args) or "", passphrase(args), create=create,
                            vector_index=index)


def open_vault(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The store the command works on: the encrypted vault, or PostgreSQL with --database."""
    if database_url(args):
        return open_postgres(args)
    home = home_of(args)
    if not vault_store.exists(home):
        raise RagdeskError(f"no vault in {home}; create one with `ragdesk init`")
    return vault_store.unlock(home, passphrase(args))


# --- sub-commands ------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    if database_url(args):
        with open_postgres(args, create=True):
            pass
        print("Created the RagDesk schema in the PostgreSQL database.")
        print("Keep the passphrase safe: it encrypts the original files stored there.")
        return EXIT_OK
    home = home_of(args)
    if vault_store.exists(home):
        raise RagdeskError(f"a vault already exists in {home}")
    if args.passphrase_file or "RAGDESK_PASSPHRASE" in os.environ:
        secret = passphrase(args)
    else:
        secret = _new_passphrase(args, "passphrase_file", "RAGDESK_PASSPHRASE")
    with vault_store.create(home, secret):
        pass
    print(f"Created an encrypted vault in {home}")
    print("Keep the passphrase safe: without it the data cannot be recovered by anyone.")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    with open_vault(args) as v:
        st = v.status()
    if args.json:
        data = asdict(st)
        data["home"] = str(home_of(args))
        print(json.dumps(data, indent=2))
        return EXIT_OK
    space = st.vector_space
    print(f"Vault:          {'PostgreSQL (--database)' if database_url(args) else home_of(args)}")
    print(f"Schema version: {st.schema_version}")
    print(f"Collections:    {st.collections}")
    print(f"Documents:      {st.documents} indexed, {st.failed_documents} failed or unsupported")
    print(f"Chunks:         {st.chunks}")
    print(f"Conversations:  {st.conversations} ({st.messages} messages)")
    print(f"Originals:      {format_bytes(st.originals_bytes)}")
    print(f"Database:       {format_bytes(st.database_bytes)}")
    print(f"Vectors:        {f'{space.embedder}, {space.dimension} dimensions' if space else 'none yet'}")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    with open_vault(args) as v:
        new = _new_passphrase(args, "new_passphrase_file", "RAGDESK_NEW_PASSPHRASE")
        v.change_passphrase(new)
    print("Passphrase changed.")
    return EXIT_OK


def _services(args: argparse.Namespace, batch: bool = False):  # type: ignore[no-untyped-def]
    from ragdesk.app import Services

    return Services(store=open_vault(args), home=home_of(args), batch=batch)


def _run_indexing(args: argparse.Namespace, job_name: str, start) -> int:  # type: ignore[no-untyped-def]
    """Drive an indexing generator: a progress bar on a terminal, a summary at the end.

    The first Ctrl+C asks the indexer to stop between steps (what is indexed is kept and the
    summary says so); a second one interrupts at once. Raising KeyboardInterrupt inside the
    worker-pool machinery could leave its locks held and hang the exit."""
    import signal

    from ragdesk.core import indexing as ix

    services = _services(args, batch=True)
    try:
        indexer = services.indexer(**_index_options(args))
        show_bar = not args.json and sys.stderr.isatty()
        bar = None
        last = ix.Progress()

        def stop(signum, frame):  # type: ignore[no-untyped-def]
            indexer.cancel()
            signal.signal(signal.SIGINT, signal.default_int_handler)

        previous = signal.signal(signal.SIGINT, stop)
        try:
            for last in start(indexer):
                if show_bar:
                    bar = _progress_bar(bar, last)
        finally:
            signal.signal(signal.SIGINT, previous)
            if bar is not None:
                bar.close()
        _report(args, last, job_name)
        if last.cancelled:
            print(f"ragdesk: interrupted; the {last.indexed} documents indexed in this run are kept",
                  file=sys.stderr)
            return 130
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
    return options


def _progress_bar(bar, p):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    if bar is None:
        bar = tqdm(total=p.files_total, unit="file", file=sys.stderr, dynamic_ncols=True,
                   bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} files [{elapsed}<{remaining}, {rate_fmt}{postfix}]")
    bar.total = p.files_total
    bar.n = p.files_done
    bar.set_postfix_str(f"{p.pages} pages, {p.chunks} chunks, {p.failed + p.unsupported} failed",
                        refresh=False)
    bar.refresh()
    return bar


def _report(args: argparse.Namespace, p, job_name: str) -> None:  # type: ignore[no-untyped-def]
    by_status: dict[str, list] = {}
    for o in p.outcomes:
        by_status.setdefault(o.status, []).append(o)
    if args.json:
        print(json.dumps({
            "indexed": [{"path": o.path, "pages": o.pages, "chunks": o.chunks,
                         **({"warning": o.reason} if o.reason else {})}
                        for o in by_status.get("indexed", [])],
            "unchanged": [o.path for o in by_status.get("unchanged", [])],
            "failed": [{"path": o.path, "reason": o.reason} for o in by_status.get("failed", [])],
            "unsupported": [{"path": o.path, "reason": o.reason}
                            for o in by_status.get("unsupported", [])],
            "removed": [o.path for o in by_status.get("removed", [])],
            "pages": p.pages,
            "chunks": p.chunks,
            "seconds": round(p.elapsed, 3),
            "cancelled": p.cancelled,
        }, indent=2, ensure_ascii=False))
        return
    line = (f"{job_name}: {p.indexed} indexed ({p.pages} pages, {p.chunks} chunks), "
            f"{p.unchanged} unchanged, {p.failed} failed, {p.unsupported} unsupported")
    if p.removed:
        line += f", {p.removed} removed"
    print(f"{line} in {p.elapsed:.1f} s")
    for status in ("failed", "unsupported"):
        for o in by_status.get(status, []):
            print(f"  {status}: {o.path}: {o.reason}")


def cmd_index(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not os.path.lexists(p)]
    if missing:
        raise RagdeskError(f"no such file or folder: {missing[0]}")
    return _run_indexing(args, "index", lambda ix: ix.run(args.paths))


def cmd_sync(args: argparse.Namespace) -> int:
    return _run_indexing(args, "sync", lambda ix: ix.sync())


def _hit_json(hit, full_text: bool = True) -> dict[str, object]:  # type: ignore[no-untyped-def]
    data: dict[str, object] = {
        "path": hit.path, "title": hit.title, "page": hit.page, "score": round(hit.score, 6),
        "text": hit.text, "snippet": hit.snippet, "heading": hit.heading,
        "document_id": hit.document_id, "chunk_id": hit.chunk_id,
        "char_start": hit.char_start, "char_end": hit.char_end,
    }
    if not full_text:
        del data["text"]
    return data


def _collection_ids(store, names: list[str] | None) -> list[int] | None:  # type: ignore[no-untyped-def]
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
    from ragdesk.core.retrieval import Retriever, SearchOptions

    if args.batch is None and args.query is None:
        raise UsageError("give a QUERY, or --batch FILE")
    if args.k < 1:
        raise UsageError("-k must be at least 1")
    services = _services(args)
    try:
        store = services.store
        collections = _collection_ids(store, args.collection)
        retriever = Retriever(store, services.embedder, SearchOptions(mode=args.mode))
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


def _marked(text: str, marks, bold: bool) -> str:  # type: ignore[no-untyped-def]
    if not bold:
        return text
    out, last = [], 0
    for start, end in marks:
        out += [text[last:start], "\033[1m", text[start:end], "\033[0m"]
        last = end
    out.append(text[last:])
    return "".join(out)


def _search_batch(args: argparse.Namespace, retriever, collections) -> int:  # type: ignore[no-untyped-def]
    """JSON lines in ({"id", "query"}), JSON lines out ({"id", "hits"}), one model load."""
    source = sys.stdin if args.batch == "-" else None
    try:
        handle = source or open(args.batch, encoding="utf-8")  # noqa: SIM115
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
        print(f"ragdesk: {bad} line(s) of {args.batch} were not queries (reported in the output)",
              file=sys.stderr)
    return EXIT_OK


def cmd_ask(args: argparse.Namespace) -> int:
    question = " ".join(args.question).strip()
    if not question:
        raise UsageError("ask what? give a QUESTION")
    services = _services(args)
    try:
        store = services.store
        collections = _collection_ids(store, args.collection)
        if args.conversation is not None and store.conversation(args.conversation) is None:
            raise RagdeskError(f"no conversation {args.conversation}")
        chat = services.chat(model=args.model)
        done = None
        try:
            for event in chat.ask(question, conversation_id=args.conversation, collection_ids=collections):
                if event.kind == "token" and not args.json:
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif event.kind == "notice" and not args.json:
                    print(f"\nragdesk: {event.notice}", file=sys.stderr)
                elif event.kind == "done":
                    done = event
        except KeyboardInterrupt:
            chat.cancel()
            print("\nragdesk: stopped; the partial answer is kept in the conversation", file=sys.stderr)
            return 130
        assert done is not None
        if args.json:
            print(json.dumps({
                "answer": done.answer, "mode": done.mode, "model": done.model,
                "status": done.status, "notice": done.notice,
                "citations": [{k: c[k] for k in ("n", "path", "title", "page", "text")}
                              for c in done.citations],
                "conversation": done.conversation_id,
            }, indent=2, ensure_ascii=False))
            return EXIT_OK
        print()
        if done.citations:
            print("\nSources:")
            for c in done.citations:
                page = f", p. {c['page']}" if c.get("page") else ""
                print(f"  [{c['n']}] {c['title']}{page} — {c['path']}")
        print(f"\n(conversation {done.conversation_id}; continue with --conversation {done.conversation_id})")
        return EXIT_OK
    finally:
        services.close()


def cmd_gui(args: argparse.Namespace) -> int:
    from ragdesk.gui.app import run  # Qt is imported only when the GUI is asked for

    return run(home_of(args), argv=[sys.argv[0]], self_test=getattr(args, "self_test", False))


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    def common_options(suppress: bool) -> argparse.ArgumentParser:
        # Sub-commands repeat the global options; their defaults are suppressed so that an
        # option given before the sub-command is not overwritten by the sub-command's default.
        extra = {"default": argparse.SUPPRESS} if suppress else {}
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--home", metavar="DIR", help="data folder (default: $RAGDESK_HOME or the platform's)", **extra)
        common.add_argument("--passphrase-file", metavar="FILE", help="read the passphrase from FILE", **extra)
        common.add_argument("--database", metavar="URL",
                            help="a PostgreSQL team server (postgresql://...; default: $RAGDESK_DATABASE_URL,"
                                 " else the encrypted vault in --home)", **extra)
        common.add_argument("-v", "--verbose", action="store_true", help="log what happens", **extra)
        return common

    common = common_options(suppress=True)
    parser = _Parser(
        prog="ragdesk",
        description="Ask questions about your own documents, offline.",
        parents=[common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"RagDesk {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the desktop app offscreen on a throw-away vault, then exit (0 = works)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, parents=[common])
        p.set_defaults(func=func)
        return p

    add("init", cmd_init, "create a new encrypted vault")
    p = add("status", cmd_status, "show what the vault holds")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("passwd", cmd_passwd, "change the vault's passphrase")
    p.add_argument("--new-passphrase-file", metavar="FILE", help="read the new passphrase from FILE")
    p = add("index", cmd_index, "index files and folders (recursively) into the vault")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--collection", metavar="NAME", help="collection to index into (default: default)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--workers", type=int, metavar="N", help="parser processes (0: parse in-process)")
    p.add_argument("--max-file-mb", type=float, metavar="MB", help="skip files larger than this (default 200)")
    p = add("sync", cmd_sync, "re-scan every collection's folders: index new and changed files, drop removed ones")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.add_argument("--workers", type=int, metavar="N", help="parser processes (0: parse in-process)")
    p = add("search", cmd_search, "find the passages that best match a query")
    p.add_argument("query", nargs="?", metavar="QUERY")
    p.add_argument("-k", type=int, default=10, metavar="N", help="how many hits (default 10)")
    p.add_argument("--collection", action="append", metavar="NAME", help="search only this collection (repeatable)")
    p.add_argument("--mode", choices=["hybrid", "keyword", "vector"], default="hybrid")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--batch", metavar="FILE", help='JSON lines {"id", "query"} in ("-" for stdin), JSON lines out')
    p = add("ask", cmd_ask, "ask a question; the answer streams, with its sources")
    p.add_argument("question", nargs="+", metavar="QUESTION")
    p.add_argument("--model", metavar="M", help="Ollama chat model (default: the vault's setting)")
    p.add_argument("--collection", action="append", metavar="NAME", help="ask only this collection (repeatable)")
    p.add_argument("--conversation", type=int, metavar="ID", help="continue this conversation")
    p.add_argument("--json", action="store_true", help="print the answer and citations as JSON")
    p = add("gui", cmd_gui, "start the desktop application (the default)")
    p.add_argument("--self-test", action="store_true", default=argparse.SUPPRESS,
                   help="open the main window offscreen on a throw-away vault, then exit (0 = works)")
    from ragdesk.cli.serve import register as register_server  # serve, token (LAN sharing)

    register_server(add, common, _services)
    from ragdesk.cli.upkeep import register as register_upkeep  # backup, restore, doctor

    register_upkeep(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func = getattr(args, "func", cmd_gui)
    try:
        return func(args)
    except UsageError as exc:
        print(f"ragdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RagdeskError as exc:
        print(f"ragdesk: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        print("ragdesk: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: the traceback only with --verbose, never in the user's face
        if args.verbose:
            log.exception("unexpected error")
        print(
            "ragdesk: an unexpected error occurred (a bug); run with --verbose for details",
            file=sys.stderr,
        )
        return EXIT_FAIL
