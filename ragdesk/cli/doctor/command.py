"""`ragdesk doctor`: the sub-command that runs the checks and prints the report (exit 1 if any
check fails); with `--fix` it first makes the vault's files private, the one finding it mends."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

from ragdesk import paths
from ragdesk.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    Subcommands,
    add_command,
    credential_file,
    database_url,
    home_of,
    notice,
    passphrase,
)
from ragdesk.cli.doctor.report import render
from ragdesk.cli.doctor.runner import run
from ragdesk.cli.doctor.vault import private_paths


def _passphrase(args: argparse.Namespace) -> str | None:
    """The doctor runs without a passphrase too: the checks inside the store are then skipped."""
    if args.passphrase_file or credential_file() or "RAGDESK_PASSPHRASE" in os.environ:
        return passphrase(args)
    if sys.stdin.isatty() and not args.json:
        return getpass.getpass("Passphrase (Enter to skip the checks inside the vault): ") or None
    return None


def fix_permissions(home: Path) -> list[Path]:
    """`--fix`: take group and other permissions away from the vault's files and folders."""
    changed = paths.tighten(private_paths(home))
    for path in changed:
        notice(f"made {path} private ({'0700' if path.is_dir() else '0600'})")
    return changed


def cmd_doctor(args: argparse.Namespace) -> int:
    if args.fix:
        fix_permissions(home_of(args))
    report = run(home_of(args), _passphrase(args), timeout=args.timeout, database=database_url(args))
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render(report))
    return EXIT_OK if report.ok else EXIT_FAIL


def register(commands: Subcommands) -> None:
    p = add_command(commands, "doctor", cmd_doctor,
                    "check the installation, the vault (or the PostgreSQL server with --database),"
                    " Ollama, disk and memory; exit 1 if anything fails")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--fix", action="store_true",
                   help="first make the data folder and the vault's files private (0700/0600)")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="seconds to wait for Ollama (default 3)")
