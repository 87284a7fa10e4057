"""`ragdesk backup`, `restore`, `migrate` and `doctor`: keeping a vault safe and healthy.

Registered into the main parser by `register()`; the work is done in core/store/backup.py,
core/store/migrate.py and ragdesk/doctor.py, this module only reads arguments, asks for
confirmation and prints.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ragdesk.core.units import format_bytes
from ragdesk.errors import RagdeskError, UsageError

EXIT_OK, EXIT_FAIL = 0, 1


def _cli():  # type: ignore[no-untyped-def]
    from ragdesk.cli import main as cli

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
    from ragdesk.core.store.sqlite import backup

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
    print(f"Backup written and verified: {result.path} ({format_bytes(result.size)},"
          f" {result.seconds:.1f} s)")
    for path in result.pruned:
        print(f"  removed old backup {path.name}")
    print("It opens only with the vault's current passphrase.")
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    from ragdesk.core.store.sqlite import backup

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


# --- migrate ------------------------------------------------------------------------------------


def _is_url(where: str) -> bool:
    return where.startswith(("postgresql://", "postgres://"))


def _describe(where: str) -> str:
    """Where a side is, for messages: a URL without its password or options."""
    if not _is_url(where):
        return str(Path(where).expanduser())
    from urllib.parse import urlsplit

    parts = urlsplit(where)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def _same_place(a: str, b: str) -> bool:
    if _is_url(a) != _is_url(b):
        return False
    if not _is_url(a):
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    from psycopg.conninfo import conninfo_to_dict

    def norm(url: str) -> dict[str, object]:
        info = conninfo_to_dict(url)
        info.pop("password", None)
        info.pop("connect_timeout", None)
        return info

    return norm(a) == norm(b)


def _target_passphrase(args: argparse.Namespace, new: bool) -> str:
    """From --target-passphrase-file, else $RAGDESK_TARGET_PASSPHRASE, else a hidden prompt."""
    if args.target_passphrase_file:
        return _cli()._read_secret_file(args.target_passphrase_file)
    if "RAGDESK_TARGET_PASSPHRASE" in os.environ:
        return os.environ["RAGDESK_TARGET_PASSPHRASE"]
    if sys.stdin.isatty():
        first = getpass.getpass("Target passphrase: ")
        if new and first != getpass.getpass("Repeat it: "):
            raise RagdeskError("the two passphrases differ; nothing was copied")
        return first
    raise UsageError("no target passphrase: set RAGDESK_TARGET_PASSPHRASE, pass"
                     " --target-passphrase-file FILE or run on a terminal")


def _open_side(where: str, secret: str, source: bool):  # type: ignore[no-untyped-def]
    """The source read-only (never changed, never created); the target created if absent."""
    side = "source" if source else "target"
    try:
        if _is_url(where):
            from ragdesk.core.store import postgres

            return postgres.connect(where, secret, create=not source, read_only=source,
                                    vector_index=os.environ.get("RAGDESK_PG_VECTOR_INDEX", "hnsw"))
        from ragdesk.core.store.sqlite import vault as vault_store

        home = Path(where).expanduser()
        if source:
            return vault_store.unlock(home, secret, read_only=True)
        if vault_store.exists(home):
            return vault_store.unlock(home, secret)
        return vault_store.create(home, secret)
    except ImportError as exc:
        raise RagdeskError(
            "the PostgreSQL backend needs psycopg: pip install 'ragdesk[postgres]'") from exc
    except RagdeskError as exc:
        kind = UsageError if isinstance(exc, UsageError) else RagdeskError
        raise kind(f"the {side} ({_describe(where)}): {exc}") from exc


def cmd_migrate(args: argparse.Namespace) -> int:
    import signal

    from ragdesk.core.store.transfer import Transfer

    cli = _cli()
    source_at, target_at = args.source, args.target
    for where in (source_at, target_at):
        if where.startswith("postgres") and not _is_url(where):
            raise UsageError(f"{where!r}: a database is given as postgresql://...")
    if _same_place(source_at, target_at):
        raise RagdeskError("the source and the target are the same; nothing was copied")
    from ragdesk.core.store.sqlite import vault as vault_store

    new_target = not _is_url(target_at) and not vault_store.exists(Path(target_at).expanduser())
    source = _open_side(source_at, cli.passphrase(args, "Source passphrase: "), source=True)
    try:
        target = _open_side(target_at, _target_passphrase(args, new_target), source=False)
        try:
            migration = Transfer(source, target, note=_describe(source_at))

            def stop(signum, frame):  # type: ignore[no-untyped-def]
                migration.cancel()
                signal.signal(signal.SIGINT, signal.default_int_handler)

            previous = signal.signal(signal.SIGINT, stop)
            show = not args.json and sys.stderr.isatty()
            last = None
            try:
                for last in migration.run():
                    if show:
                        _show_progress(last)
            finally:
                signal.signal(signal.SIGINT, previous)
                if show:
                    sys.stderr.write("\r\033[K")
        finally:
            target.close()
    finally:
        source.close()
    assert last is not None
    if last.cancelled:
        print(f"ragdesk: interrupted after {last.documents_done} of {last.documents_total}"
              " documents; what was copied is kept: run the same command again to finish"
              " (nothing is copied twice)", file=sys.stderr)
        return 130
    verification = last.verification
    assert verification is not None
    if args.json:
        print(json.dumps(_migration_json(last, source_at, target_at), indent=2, ensure_ascii=False))
    else:
        print(_migration_text(last, source_at, target_at))
    if not verification.ok:
        print(f"ragdesk: the copy does not match the source ({len(verification.problems)}"
              f" problem(s), e.g. {verification.problems[0]})", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _show_progress(p) -> None:  # type: ignore[no-untyped-def]
    if p.stage == "documents":
        line = f"documents {p.documents_done}/{p.documents_total}"
    elif p.stage == "conversations":
        line = f"conversations {p.conversations_copied + p.conversations_skipped}/{p.conversations_total}"
    else:
        line = p.stage
    sys.stderr.write(f"\r\033[K{line}")
    sys.stderr.flush()


def _migration_json(p, source_at: str, target_at: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from dataclasses import asdict

    v = p.verification
    return {
        "source": _describe(source_at), "target": _describe(target_at), "verified": v.ok,
        "seconds": round(p.elapsed, 3),
        "copied": {"documents": p.documents_copied, "conversations": p.conversations_copied,
                   "tokens": p.tokens_copied, "audit": p.audit_copied,
                   "settings": p.settings_copied, "server_identity": p.identity},
        "skipped": {"documents": p.documents_skipped, "conversations": p.conversations_skipped,
                    "tokens": p.tokens_skipped, "audit": p.audit_skipped,
                    "settings": p.settings_kept},
        "verification": asdict(v),
    }


def _migration_text(p, source_at: str, target_at: str) -> str:  # type: ignore[no-untyped-def]
    v = p.verification
    lines = [f"Migrated {_describe(source_at)} -> {_describe(target_at)} in {p.elapsed:.1f} s",
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


def cmd_doctor(args: argparse.Namespace) -> int:
    from ragdesk.cli import doctor

    cli = _cli()
    report = doctor.run(cli.home_of(args), _doctor_passphrase(args), timeout=args.timeout,
                        database=cli.database_url(args))
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
    p = add("migrate", cmd_migrate,
            "copy everything from one store into another (vault <-> PostgreSQL), then verify;"
            " run again after an interruption to finish")
    p.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                   help="a vault folder or a postgresql://... URL (opened read-only; passphrase:"
                        " $RAGDESK_PASSPHRASE or --passphrase-file)")
    p.add_argument("--to", dest="target", required=True, metavar="TARGET",
                   help="a vault folder or a postgresql://... URL (created if absent)")
    p.add_argument("--target-passphrase-file", metavar="FILE",
                   help="read the target's passphrase from FILE (default: $RAGDESK_TARGET_PASSPHRASE)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p = add("doctor", cmd_doctor,
            "check the installation, the vault (or the PostgreSQL server with --database), Ollama,"
            " disk and memory; exit 1 if anything fails")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--timeout", type=float, default=3.0, metavar="S",
                   help="seconds to wait for Ollama (default 3)")
