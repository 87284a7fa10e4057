"""`ragdesk audit verify | anchor | export | prune | retention`: the tamper-evident audit log.

`verify` walks the hash chain (core/store/chain.py) and names the first entry changed, deleted,
inserted or moved (exit 1), else prints the count and the head (exit 0); `--anchor SEQ:HASH`
also proves the log still holds a point the user kept outside the store, which catches a restored
older copy or a cut-off end. `anchor` prints that point. Reading commands open the store
read-only, so they work while the GUI or `ragdesk serve` has it open, and add no entry.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ragdesk.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    CliParser,
    Subcommands,
    add_command,
    database_url,
    home_of,
    open_store_at,
    passphrase,
    shared_options,
)
from ragdesk.core.store.chain import RETENTION_SETTING, Head, when
from ragdesk.core.store.open import backend_available, store_exists
from ragdesk.core.store.rowmap import detail_json
from ragdesk.errors import RagdeskError, StorageError, UsageError

if TYPE_CHECKING:
    from ragdesk.core.store.base import Store

DAY = 86400.0
# How an auditor recomputes an entry's hash from the export alone (core/store/chain.canonical).
HASH_FORMAT = ("sha256 over the bytes: seq, newline, repr(at) (shortest round-trip float), newline,"
               " len(event):event, newline, len(detail_text):detail_text, newline, prev_hash;"
               " lengths in UTF-8 bytes; entry 1's prev_hash is 64 zeros")


def _open(args: argparse.Namespace, read_only: bool) -> Store:
    """The command's store; read-only when asked and the schema allows (an older one is opened
    normally once, which upgrades it)."""
    where: Any = database_url(args)
    if where:
        missing = backend_available(where)
        if missing is not None:
            raise RagdeskError(missing)
    else:
        where = home_of(args)
        if not store_exists(where):
            raise RagdeskError(f"no vault in {where}; create one with `ragdesk init`")
    secret = passphrase(args)
    if read_only:
        try:
            return open_store_at(where, secret, read_only=True)
        except StorageError:  # an older schema: the normal open upgrades it
            pass
    return open_store_at(where, secret)


def parse_since(text: str) -> float:
    """A date or date-time (ISO 8601; UTC unless it carries an offset) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since takes a date like 2026-01-31 or 2026-01-31T08:00, not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def cmd_audit(args: argparse.Namespace) -> int:
    action = getattr(args, "audit_command", None)
    if not action:
        raise UsageError("audit what? verify, anchor, export, prune or retention")
    anchor = None
    if action == "verify" and args.anchor:
        try:
            anchor = Head.parse(args.anchor)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    since = parse_since(args.since) if action == "export" else None
    store = _open(args, read_only=action in ("verify", "anchor", "export"))
    try:
        if action == "verify":
            verdict = store.verify_audit(anchor)
            print(json.dumps(verdict.to_json(), indent=2) if args.json else verdict.summary())
            return EXIT_OK if verdict.ok else EXIT_FAIL
        if action == "anchor":
            return _anchor(store, args.json)
        if action == "export":
            assert since is not None
            return _export(store, since, args.json)
        if action == "prune":
            return _prune(store, args.older_than)
        return _retention(store, args.days)
    finally:
        store.close()


def _anchor(store: Store, as_json: bool) -> int:
    head = store.audit_head()
    if head is None:
        raise RagdeskError("the audit log is empty; there is nothing to anchor yet")
    if as_json:
        print(json.dumps({"anchor": str(head), "seq": head.seq, "hash": head.hash,
                          "taken_at": when(time.time())}, indent=2))
    else:
        print(head)
    return EXIT_OK


def _export(store: Store, since: float, as_json: bool) -> int:
    """The entries since a time, oldest first, with the chain fields an auditor needs to check
    them, and the whole log's verification state (exit 1 when it does not verify)."""
    verdict = store.verify_audit()
    entries = store.audit_since(since)
    if as_json:
        out = {"since": when(since), "verification": verdict.to_json(), "hash": HASH_FORMAT,
               "entries": [{"seq": e.seq, "at": e.at, "time": when(e.at), "event": e.event,
                            "detail": e.detail, "detail_text": detail_json(e.detail),
                            "prev_hash": e.prev_hash, "hash": e.hash}
                           for e in entries]}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print(f"# {verdict.summary()}")
        print(f"# entries since {when(since)}: seq, time, event, detail")
        for e in entries:
            print(f"{e.seq}\t{when(e.at)}\t{e.event}\t{json.dumps(e.detail, ensure_ascii=False)}")
    return EXIT_OK if verdict.ok else EXIT_FAIL


def _prune(store: Store, older_than: float | None) -> int:
    days = older_than if older_than is not None else store.get_setting(RETENTION_SETTING)
    if days is None:
        raise UsageError("no retention is set (every entry is kept): pass --older-than DAYS or set"
                         " one with `ragdesk audit retention DAYS`")
    if float(days) <= 0:
        raise UsageError("--older-than takes a number of days above 0")
    pruned = store.prune_audit(time.time() - float(days) * DAY)
    if pruned is None:
        print(f"Nothing to prune: no entry is older than {days:g} days.")
    else:
        print(f"Pruned {pruned.entries} entries older than {days:g} days (up to entry"
              f" {pruned.through.seq}); checkpoint entry {pruned.checkpoint.seq} vouches for them.")
        print(f"New anchor: {pruned.checkpoint}")
    return EXIT_OK


def _retention(store: Store, days: str | None) -> int:
    if days is not None:
        if days.lower() in ("keep-all", "off", "none"):
            store.set_setting(RETENTION_SETTING, None)
            store.audit("settings changed", audit_retention_days=None)
        else:
            try:
                value = float(days)
            except ValueError:
                raise UsageError(f"retention is a number of days or keep-all, not {days!r}") from None
            if value < 1:
                raise UsageError("retention must be at least 1 day")
            store.set_setting(RETENTION_SETTING, value)
            store.audit("settings changed", audit_retention_days=value)
    current = store.get_setting(RETENTION_SETTING)
    print("Audit entries are kept forever." if current is None else
          f"Audit entries older than {current:g} days are pruned when the store is opened"
          " (a checkpoint entry keeps the chain verifiable).")
    return EXIT_OK


def register(commands: Subcommands) -> None:
    p = add_command(commands, "audit", cmd_audit,
                    "verify, anchor, export or prune the tamper-evident audit log")
    actions = p.add_subparsers(dest="audit_command", metavar="ACTION", parser_class=CliParser)
    shared = [shared_options(suppress=True)]
    c = actions.add_parser("verify", parents=shared,
                           help="walk the hash chain; exit 1 naming the first entry changed,"
                                " deleted, inserted or moved")
    c.add_argument("--anchor", metavar="SEQ:HASH",
                   help="also prove the log still holds this point (from `ragdesk audit anchor`)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = actions.add_parser("anchor", parents=shared,
                           help="print the head as SEQ:HASH, to keep outside the store")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = actions.add_parser("export", parents=shared,
                           help="print the entries since a date, with their hashes, for auditors")
    c.add_argument("--since", required=True, metavar="DATE",
                   help="2026-01-31 or 2026-01-31T08:00 (UTC unless an offset is given)")
    c.add_argument("--json", action="store_true", help="print JSON")
    c = actions.add_parser("prune", parents=shared,
                           help="remove old entries now, leaving a checkpoint entry")
    c.add_argument("--older-than", type=float, metavar="DAYS",
                   help="entries older than DAYS (default: the retention setting)")
    c = actions.add_parser("retention", parents=shared,
                           help="show or set how long entries are kept (DAYS or keep-all)")
    c.add_argument("days", nargs="?", metavar="DAYS|keep-all")
