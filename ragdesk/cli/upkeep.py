"""`ragdesk backup`, `restore` and `migrate`: keeping a store safe and moving it.

The work is done in core/store/sqlite/backup.py and core/store/transfer/; this module reads
arguments, asks for confirmation and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ragdesk.cli.common import (
    EXIT_FAIL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Subcommands,
    add_command,
    add_weak_passphrase_option,
    describe_location,
    first_interrupt_cancels,
    home_of,
    notice,
    open_store_at,
    passphrase,
    read_secret,
    refuse_weak,
)
from ragdesk.core.store.open import is_database_url, store_exists
from ragdesk.core.units import format_bytes
from ragdesk.errors import RagdeskError, UsageError

if TYPE_CHECKING:
    from ragdesk.core.store.base import Store
    from ragdesk.core.store.transfer import TransferProgress


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
    from ragdesk.core.store.sqlite import backup

    if args.keep is not None and args.keep < 1:
        raise UsageError("--keep must be at least 1")
    home = home_of(args)
    if not backup.vault_present(home):
        raise RagdeskError(f"no vault in {home}; nothing to back up")
    result = backup.create_backup(home, passphrase(args), Path(args.dest).expanduser(),
                                  keep=args.keep, progress=_progress(not args.json and sys.stderr.isatty()))
    if args.json:
        print(json.dumps({"path": str(result.path), "bytes": result.size,
                          "seconds": round(result.seconds, 3), "verified": True,
                          "pruned": [str(p) for p in result.pruned]}, indent=2))
        return EXIT_OK
    print(f"Backup written and verified: {result.path} ({format_bytes(result.size)},"
          f" {result.seconds:.1f} s)")
    for path in result.pruned:
        print(f"  removed old backup {path.name}")
    print("It opens only with the vault's current passphrase.")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from ragdesk.core.store.sqlite import backup

    home = home_of(args)

    def confirm(source: Path, target: Path) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            return False
        answer = input(f"Replace the vault in {target} with the backup {source.name}?"
                       " The current vault is kept aside in the same folder. [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    try:
        result = backup.restore(Path(args.src).expanduser(), home, passphrase(args),
                                replace=confirm)
    except backup.NeedsConfirmation:
        raise RagdeskError(
            f"a vault already exists in {home}; pass --yes to replace it"
            " (it is moved aside into a replaced-<time> folder, not deleted)") from None
    if args.json:
        print(json.dumps({"restored": str(result.source), "home": str(result.home),
                          "replaced": str(result.replaced) if result.replaced else None,
                          "verified": True, "audit": result.audit}, indent=2))
        return EXIT_OK
    print(f"Restored {result.source} into {result.home} (verified).")
    if result.replaced:
        print(f"The vault that was there is kept in {result.replaced}")
    if result.audit.get("head"):
        print(f"Recorded in the audit log; its new head (keep it as an anchor): {result.audit['head']}")
    return EXIT_OK


# --- migrate ------------------------------------------------------------------------------------


def _location(where: str) -> str | Path:
    """A side of a migration as open_store takes it: the URL as given, a folder expanded."""
    return where if is_database_url(where) else Path(where).expanduser()


def _same_place(a: str, b: str) -> bool:
    if is_database_url(a) != is_database_url(b):
        return False
    if not is_database_url(a):
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    from psycopg.conninfo import conninfo_to_dict

    def norm(url: str) -> dict[str, object]:
        info: dict[str, object] = dict(conninfo_to_dict(url))
        info.pop("password", None)
        info.pop("connect_timeout", None)
        return info

    return norm(a) == norm(b)


def _target_passphrase(args: argparse.Namespace, new: bool) -> str:
    """From --target-passphrase-file, else $RAGDESK_TARGET_PASSPHRASE, else a hidden prompt
    (typed twice for a new vault, and refused if weak: it becomes the new store's)."""
    secret = read_secret(args.target_passphrase_file, "RAGDESK_TARGET_PASSPHRASE", "Target passphrase: ",
                         "no target passphrase: set RAGDESK_TARGET_PASSPHRASE, pass"
                         " --target-passphrase-file FILE or run on a terminal",
                         repeat_or="nothing was copied" if new else None)
    if new:
        refuse_weak(args, secret)
    return secret


def _open_side(where: str, secret: str, source: bool) -> Store:
    """The source read-only (never changed, never created); the target created if absent."""
    try:
        return open_store_at(_location(where), secret, create=not source, read_only=source)
    except RagdeskError as exc:
        kind = UsageError if isinstance(exc, UsageError) else RagdeskError
        raise kind(f"the {'source' if source else 'target'} ({describe_location(where)}): {exc}") from exc


def cmd_migrate(args: argparse.Namespace) -> int:
    from ragdesk.core.store.transfer import Transfer

    source_at, target_at = args.source, args.target
    for where in (source_at, target_at):
        if where.startswith("postgres") and not is_database_url(where):
            raise UsageError(f"{where!r}: a database is given as postgresql://...")
    if _same_place(source_at, target_at):
        raise RagdeskError("the source and the target are the same; nothing was copied")
    try:  # a new store's passphrase is typed twice and checked; an existing one's is not
        new_target = not store_exists(_location(target_at))
    except RagdeskError as exc:
        raise RagdeskError(f"the target ({describe_location(target_at)}): {exc}") from exc
    source = _open_side(source_at, passphrase(args, "Source passphrase: "), source=True)
    try:
        target = _open_side(target_at, _target_passphrase(args, new_target), source=False)
        try:
            migration = Transfer(source, target, note=describe_location(source_at))
            show = not args.json and sys.stderr.isatty()
            last = None
            try:
                with first_interrupt_cancels(migration.cancel):
                    for last in migration.run():
                        if show:
                            _show_progress(last)
            finally:
                if show:
                    sys.stderr.write("\r\033[K")
        finally:
            target.close()
    finally:
        source.close()
    assert last is not None
    if last.cancelled:
        notice(f"interrupted after {last.documents_done} of {last.documents_total} documents;"
               " what was copied is kept: run the same command again to finish"
               " (nothing is copied twice)")
        return EXIT_INTERRUPTED
    verification = last.verification
    assert verification is not None
    if args.json:
        print(json.dumps(_migration_json(last, source_at, target_at), indent=2, ensure_ascii=False))
    else:
        print(_migration_text(last, source_at, target_at))
    if not verification.ok:
        notice(f"the copy does not match the source ({len(verification.problems)}"
               f" problem(s), e.g. {verification.problems[0]})")
        return EXIT_FAIL
    return EXIT_OK


def _show_progress(p: TransferProgress) -> None:
    if p.stage == "documents":
        line = f"documents {p.documents_done}/{p.documents_total}"
    elif p.stage == "conversations":
        line = f"conversations {p.conversations_copied + p.conversations_skipped}/{p.conversations_total}"
    else:
        line = p.stage
    sys.stderr.write(f"\r\033[K{line}")
    sys.stderr.flush()


def _migration_json(p: TransferProgress, source_at: str, target_at: str) -> dict[str, object]:
    v = p.verification
    assert v is not None
    return {
        "source": describe_location(source_at), "target": describe_location(target_at),
        "verified": v.ok,
        "seconds": round(p.elapsed, 3),
        "copied": {"documents": p.documents_copied, "conversations": p.conversations_copied,
                   "tokens": p.tokens_copied, "audit": p.audit_copied,
                   "settings": p.settings_copied, "server_identity": p.identity},
        "skipped": {"documents": p.documents_skipped, "conversations": p.conversations_skipped,
                    "tokens": p.tokens_skipped, "audit": p.audit_skipped,
                    "settings": p.settings_kept},
        "verification": asdict(v),
    }


def _migration_text(p: TransferProgress, source_at: str, target_at: str) -> str:
    v = p.verification
    assert v is not None
    lines = [f"Migrated {describe_location(source_at)} -> {describe_location(target_at)}"
             f" in {p.elapsed:.1f} s",
             f"  documents      {p.documents_copied} copied, {p.documents_skipped} already there",
             f"  conversations  {p.conversations_copied} copied, {p.conversations_skipped} already there",
             f"  tokens         {p.tokens_copied} copied, {p.tokens_skipped} already there",
             f"  audit log      {p.audit_copied} entries copied, {p.audit_skipped} already there",
             f"  settings       {', '.join(p.settings_copied) or 'none'} copied"
             + (f"; kept the target's {', '.join(p.settings_kept)}" if p.settings_kept else ""),
             f"  server identity {p.identity}",
             "Verification:" + (" every item matches" if v.ok else " MISMATCH")]
    for name, c in v.counts.items():
        lines.append(f"  {name:<14} {c['matched']} of {c['source']} match"
                     f" (target holds {c['target']})")
    tolerance = (f"within {v.vector_tolerance:.2g}: PostgreSQL keeps halfvec" if v.vector_tolerance
                 else "exactly")
    lines.append(f"  vectors equal {tolerance} (largest difference {v.max_vector_difference:.2g})")
    for name, digest in v.checksums.items():
        lines.append(f"  sha256 {name:<13} {digest}")
    lines.extend(f"  note: {n}" for n in v.notes)
    lines.extend(f"  problem: {n}" for n in v.problems[:20])
    return "\n".join(lines)


def register(commands: Subcommands) -> None:
    p = add_command(commands, "backup", cmd_backup,
                    "write a verified, encrypted copy of the vault into a new folder under DEST"
                    " (works while the vault is in use)")
    p.add_argument("dest", metavar="DEST", help="folder that collects the backups")
    p.add_argument("--keep", type=int, metavar="N", help="then delete all but the newest N backups in DEST")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_command(commands, "restore", cmd_restore,
                    "put a backup in place as the vault (the current vault is kept aside, not deleted)")
    p.add_argument("src", metavar="SRC", help="a backup folder, or a folder of backups (the newest is used)")
    p.add_argument("--yes", action="store_true", help="replace an existing vault without asking")
    p.add_argument("--json", action="store_true", help="print JSON")
    p = add_command(commands, "migrate", cmd_migrate,
                    "copy everything from one store into another (vault <-> PostgreSQL), then verify;"
                    " run again after an interruption to finish")
    p.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                   help="a vault folder or a postgresql://... URL (opened read-only; passphrase:"
                        " $RAGDESK_PASSPHRASE or --passphrase-file)")
    p.add_argument("--to", dest="target", required=True, metavar="TARGET",
                   help="a vault folder or a postgresql://... URL (created if absent)")
    p.add_argument("--target-passphrase-file", metavar="FILE",
                   help="read the target's passphrase from FILE (default: $RAGDESK_TARGET_PASSPHRASE)")
    add_weak_passphrase_option(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
