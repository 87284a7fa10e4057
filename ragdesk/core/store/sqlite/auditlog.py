"""The vault's audit log: chained entries (core/store/chain.py says how and why), appended many per
transaction, walked for verification, pruned behind a checkpoint, and the migration that chains a
log written before the chain existed.

The functions take a connection, so the doctor's read-only look (inspect.py) verifies the same way
as an unlocked vault, and the migration (schema.py) can use them; `audittrail.AuditTrail` is the
Store's AuditLog role over the vault's connections.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlcipher3

from ragdesk.core.store import chain, rowmap
from ragdesk.core.store.chain import CHECKPOINT_EVENT, Head, Pruned, Row, Verdict
from ragdesk.errors import RagdeskError

_PAGE = 5000
TRIGGERS = ("audit_log_no_update", "audit_log_no_delete")
# A guard against mistakes: the chain is the evidence (whoever holds the passphrase can drop these).
CREATE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN"
    " SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN"
    " SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
# In the vault an entry's sequence number is its row id (the table's b-tree key): a separate
# unique column cost a second b-tree insert per entry, which doubled an entry's write time.
# `seq` is a virtual column equal to it, so the chain reads the same in both stores.
_INSERT = "INSERT INTO audit_log(id, at, event, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?)"
CREATE_TABLE = (
    "CREATE TABLE audit_log ("
    " id INTEGER PRIMARY KEY,"  # the chain's order: 1, 2, 3, ... with no gap
    " at REAL NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}',"
    " prev_hash TEXT NOT NULL,"  # the hash of entry id - 1 (chain.GENESIS for entry 1)
    " hash TEXT NOT NULL,"  # sha256 over chain.canonical(seq, at, event, detail, prev_hash)
    " seq INTEGER GENERATED ALWAYS AS (id) VIRTUAL)"
)


def head(db: sqlcipher3.Connection) -> Head | None:
    row = db.execute("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1").fetchone()
    return Head(row[0], row[1]) if row else None


def append(db: sqlcipher3.Connection, values: Sequence[tuple[float, str, str]]) -> None:
    """Append (at, event, detail JSON) rows after the head, inside the caller's write transaction
    (which SQLite holds alone, so two writers never link to the same head)."""
    db.executemany(_INSERT, [(seq, at, event, detail, prev, digest)
                             for at, event, detail, seq, prev, digest in chain.link(values, head(db))])


def rows(db: sqlcipher3.Connection, where: str = "", params: Sequence[Any] = ()) -> Iterator[Row]:
    """Every entry in sequence order, read a page at a time; `where` narrows it (AND-ed)."""
    last = -(2**62)
    extra = f" AND ({where})" if where else ""
    while True:
        page = db.execute(f"SELECT {chain.COLUMNS} FROM audit_log WHERE id > ?{extra}"
                          " ORDER BY id LIMIT ?", (last, *params, _PAGE)).fetchall()
        yield from page
        if len(page) < _PAGE:
            return
        last = page[-1][0]


def is_chained(db: sqlcipher3.Connection) -> bool:
    """False for a vault whose log predates the chain (its next unlock migrates it)."""
    return any(r[1] == "hash" for r in db.execute("PRAGMA table_info(audit_log)").fetchall())


def verify(db: sqlcipher3.Connection, anchor: Head | None = None) -> Verdict:
    """Walk the whole log (read-only); see chain.verify."""
    checkpoints = db.execute(f"SELECT {chain.COLUMNS} FROM audit_log WHERE event = ? ORDER BY id",
                             (CHECKPOINT_EVENT,)).fetchall()
    guards = db.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"
        f" AND name IN ({', '.join('?' * len(TRIGGERS))})", TRIGGERS).fetchone()[0] == len(TRIGGERS)
    return chain.verify(rows(db), checkpoints, anchor, guards)


def prune(db: sqlcipher3.Connection, before: float) -> Pruned | None:
    """Remove the entries older than `before` (a prefix) and append the checkpoint that vouches
    for the last one removed, inside the caller's write transaction. Only an intact log is pruned:
    pruning a tampered one would erase the evidence. None when nothing is that old."""
    oldest = db.execute("SELECT at FROM audit_log ORDER BY id LIMIT 1").fetchone()
    if oldest is None or oldest[0] >= before:  # the usual case on an open: nothing to walk
        return None
    verdict = verify(db)
    if not verdict.ok:
        raise RagdeskError(f"the audit log does not verify, so it was not pruned: {verdict.summary()}")
    last = verdict.head
    through = chain.prune_point(((r[1], r[2], r[6]) for r in rows(db)), before)
    if through is None:
        return None
    count = db.execute("SELECT count(*) FROM audit_log WHERE id <= ?", (through.seq,)).fetchone()[0]
    for name in TRIGGERS:  # in this transaction only: they are back before it commits
        db.execute(f"DROP TRIGGER {name}")
    db.execute("DELETE FROM audit_log WHERE id <= ?", (through.seq,))
    for sql in CREATE_TRIGGERS:
        db.execute(sql)
    # linked to the head read before the delete: when every entry went, the table is empty
    detail = chain.checkpoint_detail(through, count, before)
    ((at, event, text, seq, prev, digest),) = chain.link(
        [(time.time(), CHECKPOINT_EVENT, rowmap.detail_json(detail))], last)
    db.execute(_INSERT, (seq, at, event, text, prev, digest))
    return Pruned(through, count, Head(seq, digest))


def chain_existing(db: sqlcipher3.Connection) -> None:
    """The migration step (schema.py, m00N_audit_chain): the log gets its chain columns and every
    entry written so far is chained in the order it was written (by id, numbered anew from 1).
    Runs inside the migration's transaction."""
    _rechain(db, "audit_log_unchained", "id")


def rechain_interim(db: sqlcipher3.Connection) -> None:
    """The migration after m004 (schema.py): m004's first form (in the working tree for half an
    hour, 2026-12-05) kept `seq` as a stored unique column and hashed JSON; a vault it chained is
    rebuilt in today's shape and chained anew, in the order of its entries. Any other vault is
    left as it is (one look at the table's columns)."""
    columns = db.execute("PRAGMA table_xinfo(audit_log)").fetchall()
    stored_seq = any(c[1] == "seq" and c[6] == 0 for c in columns)  # hidden 0: a real column
    if not stored_seq:
        return
    _rechain(db, "audit_log_interim", "seq, id")


def _rechain(db: sqlcipher3.Connection, aside: str, order: str) -> None:
    """Rebuild audit_log in today's shape with its entries (at, event, detail) chained anew from
    1 in `order`: the old table is set aside as `aside`, read, and dropped."""
    for name in TRIGGERS:
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    db.execute("DROP INDEX IF EXISTS audit_log_checkpoints")
    db.execute(f"ALTER TABLE audit_log RENAME TO {aside}")
    db.execute(CREATE_TABLE)
    old = db.execute(f"SELECT at, event, detail FROM {aside} ORDER BY {order}").fetchall()
    db.executemany(_INSERT, [(seq, at, event, detail, prev, digest) for at, event, detail, seq, prev,
                             digest in chain.link(old, None)])
    db.execute(f"DROP TABLE {aside}")
    db.execute(f"CREATE INDEX audit_log_checkpoints ON audit_log(id) WHERE event = '{CHECKPOINT_EVENT}'")
    for sql in CREATE_TRIGGERS:
        db.execute(sql)
