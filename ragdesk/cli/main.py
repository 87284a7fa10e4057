"""The command line: builds `ragdesk`'s parser from the command families and runs the command.

Each family module registers its sub-commands (vault: init, status, passwd; library: index,
sync, search, ask; upkeep: backup, restore, migrate; serve: serve, token; audit; doctor;
desktop: gui).
Without a sub-command `ragdesk` starts the desktop application.

Exit codes: 0 success, 1 a failure explained in one line on stderr, 2 wrong usage, 130 stopped
by Ctrl+C. A bug is reported in one line too; its traceback only with --verbose.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ragdesk import __version__
from ragdesk.cli import audit, desktop, doctor, library, serve, upkeep, vault
from ragdesk.cli.common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliParser,
    Command,
    Subcommands,
    notice,
    shared_options,
)
from ragdesk.errors import RagdeskError, UsageError

log = logging.getLogger("ragdesk.cli.main")

# Each family's register(commands), in the order `ragdesk --help` lists them.
FAMILIES: tuple[Callable[[Subcommands], None], ...] = (
    vault.register, library.register, desktop.register, serve.register, upkeep.register,
    audit.register, doctor.register,
)


def build_parser() -> CliParser:
    parser = CliParser(
        prog="ragdesk",
        description="Ask questions about your own documents, offline.",
        parents=[shared_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"RagDesk {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="open the desktop app offscreen on a throw-away vault, then exit (0 = works)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)
    for register in FAMILIES:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Command = getattr(args, "func", desktop.cmd_gui)
    try:
        return func(args)
    except UsageError as exc:
        notice(str(exc))
        return EXIT_USAGE
    except RagdeskError as exc:
        notice(str(exc))
        return EXIT_FAIL
    except KeyboardInterrupt:
        notice("interrupted")
        return EXIT_INTERRUPTED
    except Exception:  # a bug: the traceback only with --verbose, never in the user's face
        if args.verbose:
            log.exception("unexpected error")
        notice("an unexpected error occurred (a bug); run with --verbose for details")
        return EXIT_FAIL
