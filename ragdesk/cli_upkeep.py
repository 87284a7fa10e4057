"""`ragdesk backup`, `ragdesk restore` and `ragdesk doctor`: keeping a vault safe and healthy.

Registered into the main parser by `register()`; the work is done in core/store/backup.py and
ragdesk/doctor.py, this module only reads arguments, asks for confirmation and prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ragdesk.errors import RagdeskError, UsageError

EXIT_OK, EXIT_FAIL = 0, 1


def _cli():  # type: ignore[no-untyped-def]
    from ragdesk import cli

    return cli


def _progress(enabled: bool) -> Callable[[str, float], None] | None:
    if not enabled:
        return None
    last: list[str] = [""]

    def show(stage: str, fraction: float) -> None:
        line = f"\r{stage} {fraction * 100:5.1f}%"
        if line != last[0]:
            sys.stderr.write(line)
            sys.stderr.flush()
            last[0] = line
        if stage == "verifying" and fraction >= 1.0:
            sys.stderr.write("\r" + " " * len(line) + "\r")

    return show


def cmd_backup(args: argparse.Namespace) -> int:
    from ragdesk.core.store import backup

    cli = _cli()
    if args.keep is not None and args.keep < 1:
        raise UsageError("--keep must be at least 1")
    home = cli.home_of(args)
    if not backup.vault_present(home):
        raise RagdeskError(f"no vault in {home}; nothing to back up")
    result = backup.create_backup(home, cli.passphrase(args), Path(args.dest).expanduser(),
                                  keep=args.keep, progress=_progress(not args.json and sys.stderr.isatty()))
    if args.json:
        print(json.dumps({"path": str(result.path), "bytes": result.size,
                          "seconds": round(result.seconds, 3), "verified": True,
                          "pruned": [str(p) for p in result.pruned]}, indent=2))
        return EXIT_OK
    print(f"Backup written and verified: {result.path} ({cli._size(result.size)},"
          f" {result.seconds:.1f} s)")
    for path in result.pruned:
        print(f"  removed old backup {path.name}")
    print("It opens only with the vault's current passphrase.")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from ragdesk.core.store import backup

    cli = _cli()
    home = cli.home_of(args)

    def confirm(source: Path, target: Path) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            return False
        answer = input(f"Replace the vault in {target} with the backup {source.name}?"
                       " The current vault is kept aside in the same folder. [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    try:
        result = backup.restore(Path(args.src).expanduser(), home, cli.passphrase(args),
                                replace=confirm)
    except backup.NeedsConfirmation:
        raise RagdeskError(
            f"a vault already exists in {home}; pass --yes to replace it"
            " (it is moved aside into a replaced-<time> folder, not deleted)") from None
    if args.json:
        print(json.dumps({"restored": str(result.source), "home": str(result.home),
                          "replaced": str(result.replaced) if result.replaced else None,
                          "verified": True}, indent=2))
        return EXIT_OK
    print(f"Restored {result.source} into {result.home} (verified).")
    if result.replaced:
        print(f"The vault that was there is kept in {result.replaced}")
    return EXIT_OK


def _doctor_passphrase(args: argparse.Namespace) -> str | None:
    if args.passphrase_file or "RAGDESK_PASSPHRASE" in os.environ:
        return _cli().passphrase(args)
    if sys.stdin.isatty() and not args.json:
        return getpass.getpass("Passphrase (Enter to skip the checks inside the vault): ") or None
    return None


def cmd_doctor(args: argparse.Namespace) -> int:
    from ragdesk import doctor

    cli = _cli()
    report = doctor.run(cli.home_of(args), _doctor_passphrase(args), timeout=args.timeout)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(doctor.render(report))
    return EXIT_OK if report.ok else EXIT_FAIL


def register(add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `backup`, `restore` and `doctor` to the main parser (`add` is build_parser's helper)."""
    p = add("backup", cmd_backup,
            "write a verified, encrypted copy of the vault into a new folder under DEST"
            " (works while the vault is in use)")
    p.add_argument("dest", metavar="DEST", help="folder that collects the backups")
    p.add_argument("--keep", type=int, metavar="N", help="then delete all but the newest N backups in DEST")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("restore", cmd_restore,
            "put a backup in place as the vault (the current vault is kept aside, not deleted)")
    p.add_argument("src", metavar="SRC", help="a backup folder, or a folder of backups (the newest is used)")
    p.add_argument("--yes", action="store_true", help="replace an existing vault without asking")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add("doctor", cmd_doctor,
            "check the installation, the vault, Ollama, disk and memory; exit 1 if anything fails")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="seconds to wait for Ollama (default 3)")
