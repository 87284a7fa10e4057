"""What every command family shares: the parser class and its shared options, exit codes,
reading passphrases, where the data lives, opening the store, and Ctrl+C handling.

Each family module (vault, library, upkeep, serve, doctor, desktop) imports this module and the
core, never main.py or another family; main.py builds the parser from their `register()`s.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import getpass
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias
from urllib.parse import urlsplit

from ragdesk import paths
from ragdesk.core.store.keys import wipe_immutable
from ragdesk.core.store.open import backend_available, is_database_url, open_store, store_exists
from ragdesk.errors import RagdeskError, UsageError

if TYPE_CHECKING:
    from ragdesk.app import Services
    from ragdesk.core.store.base import Store

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # what a shell reports for a process ended by SIGINT

Command: TypeAlias = Callable[[argparse.Namespace], int]


class CliParser(argparse.ArgumentParser):
    """argparse's parser, with its usage errors printed as `ragdesk: ...` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ragdesk: {message}\n")


# What add_subparsers() returns: families register their sub-commands into it. argparse's class
# is generic only in the type stubs, so the parameter is given to the type checker alone.
if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[CliParser]
else:
    Subcommands = argparse._SubParsersAction


def shared_options(suppress: bool) -> CliParser:
    """--home, --passphrase-file, --database and --verbose, as a parent parser.

    Sub-commands repeat the global options with their defaults suppressed, so that an option
    given before the sub-command is not overwritten by the sub-command's default."""
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    options = CliParser(add_help=False)
    options.add_argument("--home", metavar="DIR",
                         help="data folder (default: $RAGDESK_HOME or the platform's)", **extra)
    options.add_argument("--passphrase-file", metavar="FILE", help="read the passphrase from FILE",
                         **extra)
    options.add_argument("--database", metavar="URL",
                         help="a PostgreSQL team server (postgresql://...; default: $RAGDESK_DATABASE_URL,"
                              " else the encrypted vault in --home)", **extra)
    options.add_argument("-v", "--verbose", action="store_true", help="log what happens", **extra)
    return options


def add_command(commands: Subcommands, name: str, func: Command, help: str) -> CliParser:
    """A sub-command `name` that runs `func(args)`, with the shared options."""
    parser = commands.add_parser(name, help=help, description=help,
                                 parents=[shared_options(suppress=True)])
    parser.set_defaults(func=func)
    return parser


def notice(text: str) -> None:
    """One line for the user on stderr, as every message of the command line: `ragdesk: ...`."""
    print(f"ragdesk: {text}", file=sys.stderr)


@contextlib.contextmanager
def first_interrupt_cancels(cancel: Callable[[], None]) -> Iterator[None]:
    """Inside the block the first Ctrl+C calls `cancel` (the work stops between steps and keeps
    what is done); a second one interrupts at once. Raising KeyboardInterrupt inside worker-pool
    machinery could leave its locks held and hang the exit."""

    def stop(signum: int, frame: FrameType | None) -> None:
        cancel()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- passphrases ---------------------------------------------------------------------------------


def read_secret_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise RagdeskError(f"cannot read the passphrase file {path}: {exc.strerror}") from exc


# The systemd credential the service units hand over (LoadCredential=passphrase:...).
CREDENTIAL_NAME = "passphrase"


def credential_file() -> str | None:
    """$CREDENTIALS_DIRECTORY/passphrase when systemd passed that credential, else None."""
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / CREDENTIAL_NAME).is_file():
        return str(Path(folder) / CREDENTIAL_NAME)
    return None


def take_from_environment(name: str) -> str:
    """$`name`'s value, removed from the environment and, on Linux and other glibc/musl systems,
    zeroed where the process's start-up environment keeps it.

    os.environ.pop() alone leaves the value in the block the kernel shows as /proc/PID/environ
    (readable by the same user and root for the process's life) and in the bytes os.environ
    kept; both are overwritten here. A secret in the environment is still best avoided: the
    parent that set it (a shell, a unit's Environment=) may keep its own copy."""
    value = os.environ[name]
    if os.name == "posix":
        with contextlib.suppress(Exception):  # best effort: never fail a command over this
            libc = ctypes.CDLL(None)
            libc.getenv.restype = ctypes.c_void_p
            libc.getenv.argtypes = [ctypes.c_char_p]
            libc.strlen.restype = ctypes.c_size_t
            libc.strlen.argtypes = [ctypes.c_void_p]
            where = libc.getenv(os.fsencode(name))
            if where:
                ctypes.memset(where, 0, libc.strlen(where))
        kept = os.environb.get(os.fsencode(name))
        os.environ.pop(name)
        if kept is not None:
            wipe_immutable(kept)
            del kept
    else:
        os.environ.pop(name)
    return value


def read_secret(path: str | None, env: str, prompt: str, missing: str,
                repeat_or: str | None = None) -> str:
    """From the file at `path`, else $`env`, else a hidden prompt on a terminal (asked twice when
    `repeat_or` says what happens if the two differ), else a UsageError saying `missing`.

    $`env` is removed from os.environ once read, so that processes this one starts (parsers,
    workers) do not inherit it. The kernel's copy of the environment the process was started
    with (/proc/PID/environ, readable by the same user and root) keeps it for the process's
    life all the same: long-running services take the passphrase from a file or a systemd
    credential instead (installer/systemd)."""
    if path:
        return read_secret_file(path)
    if env in os.environ:
        return take_from_environment(env)
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if repeat_or is not None and first != getpass.getpass("Repeat it: "):
            raise RagdeskError(f"the two passphrases differ; {repeat_or}")
        return first
    raise UsageError(missing)


def passphrase(args: argparse.Namespace, prompt: str = "Passphrase: ") -> str:
    """From --passphrase-file, else the systemd credential `passphrase`, else $RAGDESK_PASSPHRASE,
    else a hidden prompt on a terminal."""
    return read_secret(args.passphrase_file or credential_file(), "RAGDESK_PASSPHRASE", prompt,
                       "no passphrase: set RAGDESK_PASSPHRASE, pass --passphrase-file FILE or run on"
                       " a terminal")


def new_passphrase(args: argparse.Namespace, file_attr: str, env: str) -> str:
    """A passphrase being chosen: from the file option `file_attr`, else $`env`, else typed twice.
    One too easy to guess (core/passphrase.py, the GUI meter's estimate) is refused with a
    UsageError (exit 2) unless --allow-weak-passphrase says the caller knows better."""
    secret = read_secret(getattr(args, file_attr, None), env, "New passphrase: ",
                         f"no new passphrase: set {env} or pass --{file_attr.replace('_', '-')} FILE",
                         repeat_or="nothing was changed")
    refuse_weak(args, secret)
    return secret


def refuse_weak(args: argparse.Namespace, secret: str) -> None:
    """UsageError (exit 2) with the estimate's advice if `secret`, about to become a store's
    passphrase, is easy to guess and --allow-weak-passphrase was not given."""
    from ragdesk.core.passphrase import weakness

    problem = None if getattr(args, "allow_weak_passphrase", False) else weakness(secret)
    if problem:
        raise UsageError(f"{problem} Nothing was changed; choose a stronger one, or pass"
                         " --allow-weak-passphrase if a weak one is really meant.")


def add_weak_passphrase_option(parser: argparse.ArgumentParser) -> None:
    """--allow-weak-passphrase, for commands that set a passphrase (scripts, throw-away vaults)."""
    parser.add_argument("--allow-weak-passphrase", action="store_true",
                        help="accept a passphrase the strength estimate calls easy to guess")


# --- where the data is, and opening it --------------------------------------------------------------


def home_of(args: argparse.Namespace) -> Path:
    return paths.home(args.home)


def database_url(args: argparse.Namespace) -> str | None:
    """--database, else $RAGDESK_DATABASE_URL: a PostgreSQL team server instead of the vault."""
    url = getattr(args, "database", None) or os.environ.get("RAGDESK_DATABASE_URL") or None
    if url and not is_database_url(url):
        raise UsageError("--database takes a postgresql://... URL")
    return url


def describe_location(where: str | Path) -> str:
    """Where a store is, for messages: a folder, or a URL without its password or options."""
    if not is_database_url(where):
        return str(Path(where).expanduser())
    parts = urlsplit(str(where))
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"


def open_store_at(where: str | Path, secret: str, *, create: bool = False,
                  read_only: bool = False) -> Store:
    """The one way the command line opens a store (a vault folder or a postgresql:// URL);
    $RAGDESK_PG_VECTOR_INDEX ("hnsw" or "exact") picks PostgreSQL's vector index."""
    return open_store(where, secret, create=create, read_only=read_only,
                      vector_index=os.environ.get("RAGDESK_PG_VECTOR_INDEX", "hnsw"))


def open_command_store(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store a command works on: PostgreSQL with --database, else the vault in --home, which
    must exist (`ragdesk init` makes it)."""
    url = database_url(args)
    if url:
        missing = backend_available(url)  # said before the passphrase is asked for
        if missing is not None:
            raise RagdeskError(missing)
        return open_store_at(url, passphrase(args), create=create)
    home = home_of(args)
    if not store_exists(home):
        raise RagdeskError(f"no vault in {home}; create one with `ragdesk init`")
    secret = passphrase(args)
    try:
        return open_store_at(home, secret)
    finally:
        # The store keeps only the derived key (in a buffer wiped on lock); this str, made for
        # this call alone, is zeroed so that a long-running `serve` holds no copy of it.
        wipe_immutable(secret)


def open_services(args: argparse.Namespace, batch: bool = False) -> Services:
    """The core services over the command's store (`batch`: a process that only indexes)."""
    from ragdesk.app import Services  # the services' imports (numpy, the embedder) only when needed

    return Services(store=open_command_store(args), home=home_of(args), batch=batch)
