"""The PostgreSQL store's audit log: chained entries (core/store/chain.py says how and why), the
same as the vault's, for several `ragdesk serve` instances writing at once.

Writers take a transaction-level advisory lock before they read the head, so two instances never
link to the same entry (a unique index on `seq` would refuse the second anyway). The functions
take a connection, so the doctor and the migration use them as the store does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from ragdesk.core.store import chain, rowmap
from ragdesk.core.store.chain import CHECKPOINT_EVENT, Head, Pruned, Row, Verdict
from ragdesk.errors import RagdeskError

AUDIT_LOCK = 0x52414744_4155_44  # "RAGDAUD": taken by every writer of the audit log
_PAGE = 5000
TRIGGERS = ("audit_log_no_change", "audit_log_no_truncate")
_INSERT = ("INSERT INTO audit_log(at, event, detail, seq, prev_hash, hash)"
           " VALUES (%s, %s, %s, %s, %s, %s)")


def head(conn: psycopg.Connection) -> Head | None:
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return Head(int(row[0]), row[1]) if row else None


def append(conn: psycopg.Connection, values: Sequence[tuple[float, str, str]]) -> None:
    """Append (at, event, detail JSON) rows after the head, inside the caller's transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
    with conn.cursor() as cur:
        cur.executemany(_INSERT, chain.link(values, head(conn)))


def rows(conn: psycopg.Connection, where: str = "", params: Sequence[Any] = ()) -> Iterator[Row]:
    """Every entry in (seq, id) order, a page at a time; `where` narrows it (AND-ed). A row
    without a sequence number (only a hand-made table could hold one) comes first."""
    extra = f" AND ({where})" if where else ""
    yield from conn.execute(f"SELECT {chain.COLUMNS} FROM audit_log WHERE seq IS NULL{extra}",
                            params).fetchall()
    seq, rid = -(2**62), -(2**62)
    while True:
        page = conn.execute(
            f"SELECT {chain.COLUMNS} FROM audit_log WHERE (seq > %s OR (seq = %s AND id > %s))"
            f"{extra} ORDER BY seq, id LIMIT %s", (seq, seq, rid, *params, _PAGE)).fetchall()
        yield from page
        if len(page) < _PAGE:
            return
        rid, seq = page[-1][0], page[-1][1]


def is_chained(conn: psycopg.Connection) -> bool:
    """False for a database whose log predates the chain (its next normal open migrates it)."""
    row = conn.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'audit_log'"
        " AND column_name = 'hash' AND table_schema = current_schema()").fetchone()
    return bool(row and row[0])


def verify(conn: psycopg.Connection, anchor: Head | None = None) -> Verdict:
    """Walk the whole log (read-only); see chain.verify."""
    checkpoints = conn.execute(
        f"SELECT {chain.COLUMNS} FROM audit_log WHERE event = %s ORDER BY seq, id",
        (CHECKPOINT_EVENT,)).fetchall()
    enabled = conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass"
        " AND tgname = ANY(%s) AND tgenabled <> 'D'", (list(TRIGGERS),)).fetchone()
    guards = enabled is not None and enabled[0] == len(TRIGGERS)
    return chain.verify(rows(conn), checkpoints, anchor, guards)


def prune(conn: psycopg.Connection, before: float) -> Pruned | None:
    """Remove the entries older than `before` (a prefix) and append the checkpoint, inside the
    caller's transaction; an intact log only (see sqlite/auditlog.prune)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
    oldest = conn.execute("SELECT at FROM audit_log ORDER BY seq LIMIT 1").fetchone()
    if oldest is None or oldest[0] >= before:  # the usual case on an open: nothing to walk
        return None
    verdict = verify(conn)
    if not verdict.ok:
        raise RagdeskError(f"the audit log does not verify, so it was not pruned: {verdict.summary()}")
    last = verdict.head
    through = chain.prune_point(((r[1], r[2], r[6]) for r in rows(conn)), before)
    if through is None:
        return None
    # The guard is switched off for this transaction's delete only (ALTER TABLE is transactional).
    conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
    count = conn.execute("DELETE FROM audit_log WHERE seq <= %s", (through.seq,)).rowcount
    conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    # linked to the head read before the delete: when every entry went, the table is empty
    detail = chain.checkpoint_detail(through, count, before)
    (row,) = chain.link([(time.time(), CHECKPOINT_EVENT, rowmap.detail_json(detail))], last)
    conn.execute(_INSERT, row)
    return Pruned(through, count, Head(row[3], row[5]))


def chain_existing(conn: psycopg.Connection) -> None:
    """The migration step (schema.py, m00N_audit_chain): chain columns, every entry so far chained
    in the order it was written (by id), then NOT NULL and a unique index on seq."""
    conn.execute("LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE")
    conn.execute("ALTER TABLE audit_log ADD COLUMN seq BIGINT, ADD COLUMN prev_hash TEXT,"
                 " ADD COLUMN hash TEXT")
    old = conn.execute("SELECT id, at, event, detail FROM audit_log ORDER BY id").fetchall()
    if old:
        linked = chain.link(((r[1], r[2], r[3]) for r in old), None)
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        with conn.cursor() as cur:
            cur.executemany("UPDATE audit_log SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s",
                            [(v[3], v[4], v[5], r[0]) for r, v in zip(old, linked, strict=True)])
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    conn.execute("ALTER TABLE audit_log ALTER COLUMN seq SET NOT NULL,"
                 " ALTER COLUMN prev_hash SET NOT NULL, ALTER COLUMN hash SET NOT NULL")
    conn.execute("CREATE UNIQUE INDEX audit_log_seq ON audit_log(seq)")
    conn.execute(f"CREATE INDEX audit_log_checkpoints ON audit_log(seq)"
                 f" WHERE event = '{CHECKPOINT_EVENT}'")
