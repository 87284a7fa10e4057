"""`ragdesk doctor`: the sub-command that runs the checks and prints the report (exit 1 if any
check fails)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from ragdesk.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    Subcommands,
    add_command,
    database_url,
    home_of,
    passphrase,
)
from ragdesk.cli.doctor.report import render
from ragdesk.cli.doctor.runner import run


def _passphrase(args: argparse.Namespace) -> str | None:
    """The doctor runs without a passphrase too: the checks inside the store are then skipped."""
    if args.passphrase_file or "RAGDESK_PASSPHRASE" in os.environ:
        return passphrase(args)
    if sys.stdin.isatty() and not args.json:
        return getpass.getpass("Passphrase (Enter to skip the checks inside the vault): ") or None
    return None


def cmd_doctor(args: argparse.Namespace) -> int:
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
    p.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="seconds to wait for Ollama (default 3)")
