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
from ragdesk.core.store import vault as vault_store
from ragdesk.errors import RagdeskError, UsageError

log = logging.getLogger("ragdesk.cli")

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


def open_vault(args: argparse.Namespace) -> vault_store.Vault:
    home = home_of(args)
    if not vault_store.exists(home):
        raise RagdeskError(f"no vault in {home}; create one with `ragdesk init`")
    return vault_store.unlock(home, passphrase(args))


# --- sub-commands ------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
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
    print(f"Vault:          {home_of(args)}")
    print(f"Schema version: {st.schema_version}")
    print(f"Collections:    {st.collections}")
    print(f"Documents:      {st.documents} indexed, {st.failed_documents} failed or unsupported")
    print(f"Chunks:         {st.chunks}")
    print(f"Conversations:  {st.conversations} ({st.messages} messages)")
    print(f"Originals:      {_size(st.originals_bytes)}")
    print(f"Database:       {_size(st.database_bytes)}")
    print(f"Vectors:        {f'{space.embedder}, {space.dimension} dimensions' if space else 'none yet'}")
    return EXIT_OK


def cmd_passwd(args: argparse.Namespace) -> int:
    with open_vault(args) as v:
        new = _new_passphrase(args, "new_passphrase_file", "RAGDESK_NEW_PASSPHRASE")
        v.change_passphrase(new)
    print("Passphrase changed.")
    return EXIT_OK


def cmd_gui(args: argparse.Namespace) -> int:
    from ragdesk.gui.app import run  # Qt is imported only when the GUI is asked for

    return run(home_of(args), argv=[sys.argv[0]])


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    def common_options(suppress: bool) -> argparse.ArgumentParser:
        # Sub-commands repeat the global options; their defaults are suppressed so that an
        # option given before the sub-command is not overwritten by the sub-command's default.
        extra = {"default": argparse.SUPPRESS} if suppress else {}
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--home", metavar="DIR", help="data folder (default: $RAGDESK_HOME or the platform's)", **extra)
        common.add_argument("--passphrase-file", metavar="FILE", help="read the passphrase from FILE", **extra)
        common.add_argument("-v", "--verbose", action="store_true", help="log what happens", **extra)
        return common

    common = common_options(suppress=True)
    parser = _Parser(
        prog="ragdesk",
        description="Ask questions about your own documents, offline.",
        parents=[common_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"RagDesk {__version__}")
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
    add("gui", cmd_gui, "start the desktop application (the default)")
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
