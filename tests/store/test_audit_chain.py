"""The hash-chained audit log on both backends: each kind of tampering a person holding the
passphrase can do directly on the database (sqlcipher3 on the vault file, psycopg on PostgreSQL)
is found, and the first entry it touched is named; anchors catch a rewritten or truncated log;
pruning leaves a checkpoint verification continues from; old logs are chained by the migration.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ragdesk.core.store import chain
from ragdesk.core.store.chain import Head
from ragdesk.errors import RagdeskError
from tests.conftest import PASSPHRASE

T0 = 1_700_000_000.0  # a fixed past time, so that pruning by age is exact


class Raw:
    """A connection straight to the store's database, opened with the passphrase, around RagDesk:
    what a person with the passphrase and a SQL shell can do. SQL is written with `?`."""

    def __init__(self, store: Any) -> None:
        self.backend = store.backend
        # the column that numbers the chain: the vault's row id (its `seq` is a virtual copy)
        self.seq = "id" if self.backend == "vault" else "seq"
        if self.backend == "vault":
            from ragdesk.core.store.sqlite import keyfile
            from ragdesk.core.store.sqlite.keyfile import Sidecar

            key, _params = keyfile.matching_key(store.path, PASSPHRASE, Sidecar.read(store.home))
            self.conn: Any = keyfile.connect(store.path, key, read_only=False)
        else:
            import psycopg

            self.conn = psycopg.connect(store.url, autocommit=True)

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.backend != "vault" and params:
            sql = sql.replace("?", "%s")
        cur = self.conn.execute(sql, params or None) if params else self.conn.execute(sql)
        return list(cur.fetchall()) if cur.description else []

    def drop_triggers(self) -> None:
        if self.backend == "vault":
            self.run("DROP TRIGGER audit_log_no_update")
            self.run("DROP TRIGGER audit_log_no_delete")
        else:
            self.run("DROP TRIGGER audit_log_no_change ON audit_log")
            self.run("DROP TRIGGER audit_log_no_truncate ON audit_log")

    def restore_triggers(self) -> None:
        if self.backend == "vault":
            from ragdesk.core.store.sqlite.auditlog import CREATE_TRIGGERS

            for sql in CREATE_TRIGGERS:
                self.run(sql)
        else:
            self.run("CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log"
                     " FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
            self.run("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log"
                     " FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")

    def seq_of(self, where: str, params: tuple[Any, ...] = ()) -> list[int]:
        return [r[0] for r in self.run(f"SELECT seq FROM audit_log WHERE {where} ORDER BY seq", params)]

    def close(self) -> None:
        self.conn.close()


@contextlib.contextmanager
def raw(store: Any) -> Iterator[Raw]:
    conn = Raw(store)
    try:
        yield conn
    finally:
        conn.close()


def fill(store: Any) -> None:
    """Forty-two entries after whatever opening the store wrote: API accesses from addresses,
    twelve tokens created, more accesses."""
    store.audit_many([(T0 + i, "api access", {"address": f"10.0.0.{i}", "token": "alice"})
                      for i in range(20)])
    store.audit_many([(T0 + 100 + i, "token created", {"name": f"t{i}"}) for i in range(12)])
    for i in range(10):  # one per transaction, as a GUI action writes them
        store.audit("api access", address=f"10.0.1.{i}", token="bob")


def test_an_untouched_log_verifies_with_its_count_and_head(store: Any) -> None:
    fill(store)
    verdict = store.verify_audit()
    assert verdict.ok, verdict.summary()
    events = store.audit_events(1000)
    assert verdict.count == len(events) and verdict.first_seq == 1
    assert verdict.head == Head(events[0].seq, events[0].hash) == store.audit_head()
    assert [e.seq for e in reversed(events)] == list(range(1, len(events) + 1))
    assert str(verdict.head) in verdict.summary()


def test_dropped_triggers_are_reported(store: Any) -> None:
    fill(store)
    with raw(store) as db:
        db.drop_triggers()
    verdict = store.verify_audit()
    assert verdict.problem is not None and verdict.problem.kind == "guard"
    assert verdict.count > 40  # every entry itself still verifies


def test_deleted_token_entries_are_named(store: Any) -> None:
    fill(store)
    with raw(store) as db:
        first = db.seq_of("event = 'token created'")[0]
        db.drop_triggers()
        db.run("DELETE FROM audit_log WHERE event = 'token created' AND seq < ?", (first + 9,))
        db.restore_triggers()
    problem = store.verify_audit().problem
    assert problem is not None and (problem.kind, problem.seq) == ("deleted", first)
    assert f"entries {first}-{first + 8} were deleted" in problem.message


def test_rewritten_addresses_are_named(store: Any) -> None:
    fill(store)
    with raw(store) as db:
        first = db.seq_of("detail LIKE '%10.0.1.%'")[0]
        db.drop_triggers()
        db.run("UPDATE audit_log SET detail = replace(detail, '10.0.1.', '192.168.7.')")
        db.restore_triggers()
    problem = store.verify_audit().problem
    assert problem is not None and (problem.kind, problem.seq) == ("changed", first)
    assert "api access" in problem.message


def test_a_back_dated_entry_is_named_as_inserted(store: Any) -> None:
    fill(store)
    with raw(store) as db:
        db.run(f"INSERT INTO audit_log(at, event, detail, {db.seq}, prev_hash, hash)"
               " VALUES (?, 'vault created', '{}', 0, ?, ?)", (T0 - 86400 * 30, chain.GENESIS, "f" * 64))
        inserted_id = db.run("SELECT id FROM audit_log WHERE seq = 0")[0][0]
    problem = store.verify_audit().problem
    assert problem is not None and (problem.kind, problem.seq, problem.id) == ("inserted", 0, inserted_id)


def test_an_entry_forged_at_the_start_with_a_valid_hash_is_named_as_inserted(store: Any) -> None:
    """The careful forger: every entry renumbered one up, a new entry 1 hashed correctly."""
    fill(store)
    with raw(store) as db:
        db.drop_triggers()
        db.run(f"UPDATE audit_log SET {db.seq} = -{db.seq} - 1")  # two steps: it stays unique
        db.run(f"UPDATE audit_log SET {db.seq} = -{db.seq}")
        at = T0 - 86400 * 30
        digest = chain.entry_hash(1, at, "vault created", "{}", chain.GENESIS)
        db.run(f"INSERT INTO audit_log(at, event, detail, {db.seq}, prev_hash, hash)"
               " VALUES (?, 'vault created', '{}', 1, ?, ?)", (at, chain.GENESIS, digest))
        db.restore_triggers()
    problem = store.verify_audit().problem
    assert problem is not None and (problem.kind, problem.seq) == ("inserted", 1)
    assert "written as entry 1" in problem.message


def test_reordered_entries_are_named(store: Any) -> None:
    fill(store)
    with raw(store) as db:
        a, b = db.seq_of("event = 'token created'")[3:5]
        db.drop_triggers()
        db.run(f"UPDATE audit_log SET {db.seq} = -1 WHERE seq = ?", (a,))
        db.run(f"UPDATE audit_log SET {db.seq} = ? WHERE seq = ?", (a, b))
        db.run(f"UPDATE audit_log SET {db.seq} = ? WHERE seq = -1", (b,))
        db.restore_triggers()
    problem = store.verify_audit().problem
    assert problem is not None and (problem.kind, problem.seq) == ("reordered", a)
    assert f"written as entry {b}" in problem.message


def test_the_whole_tampering_of_the_issue_is_caught_at_its_first_entry(store: Any) -> None:
    """Drop the triggers, delete 9 "token created" rows, rewrite addresses, insert a back-dated
    "vault created" row, restore the triggers: verification fails, naming the earliest change."""
    fill(store)
    with raw(store) as db:
        first_address = db.seq_of("detail LIKE '%10.0.0.%'")[0]
        first_token = db.seq_of("event = 'token created'")[0]
        db.drop_triggers()
        db.run("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log"
               " WHERE event = 'token created' ORDER BY seq LIMIT 9)")
        db.run("UPDATE audit_log SET detail = replace(detail, '10.0.0.', '172.16.0.')")
        db.run(f"INSERT INTO audit_log(at, event, detail, {db.seq}, prev_hash, hash)"
               " VALUES (?, 'vault created', '{}', ?, ?, ?)",
               (T0 - 86400, first_token, chain.GENESIS, "0" * 64))  # into the hole left
        db.restore_triggers()
    verdict = store.verify_audit()
    assert not verdict.ok and verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.seq) == ("changed", first_address)
    assert verdict.count == first_address - 1  # everything before it still verified


def test_a_rehashed_log_passes_alone_but_fails_its_anchor(store: Any) -> None:
    """Whoever recomputes every hash after a change makes a consistent chain: only a point kept
    outside the store shows it (which is what anchors are for)."""
    fill(store)
    anchor = store.audit_head()
    with raw(store) as db:
        db.drop_triggers()
        rows = db.run("SELECT id, at, event, detail FROM audit_log ORDER BY seq")
        forged = chain.link([(at, event, detail.replace("10.0.0.", "172.16.0."))
                             for _id, at, event, detail in rows], None)
        for (rid, *_), (_at, _event, detail, _seq, prev, digest) in zip(rows, forged, strict=True):
            db.run("UPDATE audit_log SET detail = ?, prev_hash = ?, hash = ? WHERE id = ?",
                   (detail, prev, digest, rid))
        db.restore_triggers()
    assert store.verify_audit().ok
    problem = store.verify_audit(anchor).problem
    assert problem is not None and (problem.kind, problem.seq) == ("anchor", anchor.seq)


def test_a_truncated_log_fails_its_anchor(store: Any) -> None:
    fill(store)
    anchor = store.audit_head()
    with raw(store) as db:
        db.drop_triggers()
        db.run("DELETE FROM audit_log WHERE seq > ?", (anchor.seq - 5,))
        db.restore_triggers()
    assert store.verify_audit().ok  # a shorter, intact chain: nothing inside it shows the cut
    problem = store.verify_audit(anchor).problem
    assert problem is not None and (problem.kind, problem.seq) == ("truncated", anchor.seq - 4)
    store.audit_many([(time.time(), "later", {"i": i}) for i in range(6)])
    # grown past the anchor's number again, but that entry is not the anchored one
    problem = store.verify_audit(anchor).problem
    assert problem is not None and (problem.kind, problem.seq) == ("anchor", anchor.seq)


def test_an_anchor_of_an_intact_log_holds_as_it_grows(store: Any) -> None:
    fill(store)
    anchor = store.audit_head()
    store.audit("settings changed")
    verdict = store.verify_audit(anchor)
    assert verdict.ok and "anchor" in verdict.summary()
    assert Head.parse(str(anchor)) == anchor
    with pytest.raises(ValueError, match="SEQ:HASH"):
        Head.parse("12:abc")


def test_pruning_leaves_a_checkpoint_that_verification_continues_from(store: Any) -> None:
    fill(store)  # the store's opening entry and these are older than the cutoff below
    later = time.time() + 1000
    store.audit_many([(later + i, "api access", {"address": f"10.0.2.{i}"}) for i in range(5)])
    kept = [e for e in store.audit_events(1000) if e.at >= later]
    first_kept = min(e.seq for e in kept)
    anchor_kept = Head(kept[0].seq, kept[0].hash)
    pruned = store.prune_audit(later - 1)
    assert pruned is not None
    assert pruned.through.seq == first_kept - 1 and pruned.entries == first_kept - 1
    verdict = store.verify_audit()
    assert verdict.ok, verdict.summary()
    assert verdict.first_seq == first_kept and verdict.checkpoint == pruned.through
    assert verdict.count == 5 + 1  # the kept entries and the checkpoint
    last = store.audit_events(1)[0]
    assert last.event == chain.CHECKPOINT_EVENT and last.detail["through_seq"] == first_kept - 1
    assert store.verify_audit(anchor_kept).ok  # a point after the checkpoint: still found
    # the first kept entry deleted as well: the checkpoint says where the log begins
    with raw(store) as db:
        db.drop_triggers()
        db.run("DELETE FROM audit_log WHERE seq = ?", (first_kept,))
        db.restore_triggers()
    problem = store.verify_audit().problem
    assert problem is not None and (problem.kind, problem.seq) == ("deleted", first_kept)
    with pytest.raises(RagdeskError, match="not pruned"):
        store.prune_audit(time.time() + 10_000)


def test_pruning_everything_old_keeps_the_chain_and_refuses_old_anchors(store: Any) -> None:
    store.audit_many([(T0 + i, "api access", {"n": i}) for i in range(5)])
    head = store.audit_head()
    assert head is not None
    # all but the store's own opening entry are in the past; prune the whole prefix before now
    pruned = store.prune_audit(time.time() + 3600)
    assert pruned is not None and pruned.through == head and pruned.checkpoint.seq == head.seq + 1
    verdict = store.verify_audit()
    assert verdict.ok and verdict.count == 1 and verdict.first_seq == head.seq + 1
    assert store.verify_audit(head).ok  # the checkpoint carries the last pruned entry's hash
    problem = store.verify_audit(Head(1, "a" * 64)).problem
    assert problem is not None and problem.kind == "anchor" and "pruned" in problem.message
    assert store.prune_audit(T0) is None  # nothing older left
    store.audit("after")
    assert store.verify_audit().ok


def test_checkpoints_copied_from_another_store_do_not_move_the_start(store: Any) -> None:
    """`ragdesk migrate` copies a pruned source's checkpoint entries as they are: in the target
    they vouch for nothing, and neither a whole log nor one pruned later is judged by them."""
    detail = chain.checkpoint_detail(Head(5000, "c" * 64), 5000, T0)
    store.audit_many([(T0 + 1, chain.CHECKPOINT_EVENT, detail), (T0 + 2, "migrated in", {})])
    assert store.verify_audit().ok, store.verify_audit().summary()
    later = time.time() + 1000
    store.audit_many([(later, "api access", {"n": 1})])
    pruned = store.prune_audit(later - 1)
    assert pruned is not None
    verdict = store.verify_audit()
    assert verdict.ok and verdict.checkpoint == pruned.through, verdict.summary()
    assert store.prune_audit(later - 1) is None  # the oldest entry is newer: nothing walked


def test_export_since_gives_entries_oldest_first_with_their_chain(store: Any) -> None:
    fill(store)
    since = list(store.audit_since(T0 + 100))
    assert [e.detail["name"] for e in since if e.event == "token created"] == [
        f"t{i}" for i in range(12)]
    assert all(e.at >= T0 + 100 for e in since)
    assert not [e for e in since if "10.0.0." in str(e.detail)]  # older than the cutoff
    assert [e.seq for e in since] == sorted(e.seq for e in since)
    assert all(chain.entry_hash(e.seq, e.at, e.event, chain_detail(e), e.prev_hash) == e.hash
               for e in since)


def chain_detail(event: Any) -> str:
    from ragdesk.core.store.rowmap import detail_json

    return detail_json(event.detail)


def test_concurrent_group_commits_keep_one_chain(store: Any) -> None:
    """Several writers at once (the server's audit thread, the GUI, a second `serve` on
    PostgreSQL): every entry gets its own number and the chain stays whole."""
    import threading

    def write(n: int) -> None:
        for i in range(10):
            store.audit_many([(time.time(), "api access", {"writer": n, "i": i, "j": j})
                              for j in range(20)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verdict = store.verify_audit()
    assert verdict.ok, verdict.summary()
    assert verdict.count >= 800


def test_a_log_written_before_the_chain_is_chained_by_the_migration(store: Any) -> None:
    """A store of the release before: its audit table as m001 made it, entries without numbers.
    Opening it with this release chains every entry in the order written and it verifies."""
    backend = store.backend
    with raw(store) as db:
        if backend == "vault":
            from ragdesk.core.store.sqlite import schema

            name = next(n for n, _ in schema.MIGRATIONS if n.endswith("_audit_chain"))
            version = [n for n, _ in schema.MIGRATIONS].index(name)  # the one before it
            for sql in ("DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete",
                        "CREATE TABLE old_log (id INTEGER PRIMARY KEY, at REAL NOT NULL,"
                        " event TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}')",
                        "INSERT INTO old_log SELECT id, at, event, detail FROM audit_log",
                        "DROP TABLE audit_log", "ALTER TABLE old_log RENAME TO audit_log",
                        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN"
                        " SELECT RAISE(ABORT, 'the audit log is append-only'); END",
                        f"DELETE FROM schema_migrations WHERE version > {version}",
                        f"PRAGMA user_version = {version}"):
                db.run(sql)
        else:
            from ragdesk.core.store.postgres import schema as pg_schema

            name = next(n for n, _ in pg_schema.MIGRATIONS if n.endswith("_audit_chain"))
            db.run("DROP INDEX audit_log_seq")
            db.run("DROP INDEX audit_log_checkpoints")
            db.run("ALTER TABLE audit_log DROP COLUMN seq, DROP COLUMN prev_hash, DROP COLUMN hash")
            db.run(f"DELETE FROM schema_migrations WHERE name = '{name}'")
        for i in range(30):  # as the release before wrote them
            db.run("INSERT INTO audit_log(at, event, detail) VALUES (?, ?, ?)",
                   (T0 + i, "token created" if i % 3 else "api access", f'{{"n": {i}}}'))
        old = [event for (event,) in db.run("SELECT event FROM audit_log ORDER BY id")]
    store.close()
    reopened = reopen(store)
    try:
        verdict = reopened.verify_audit()
        assert verdict.ok, verdict.summary()
        entries = list(reversed(reopened.audit_events(1000)))
        assert [e.event for e in entries[:len(old)]] == old
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        assert verdict.count == len(entries) == len(old) + 1  # and the opening entry
        with raw(reopened) as db, pytest.raises(Exception, match="append-only"):
            db.run("UPDATE audit_log SET event = 'x'")
    finally:
        reopened.close()


def reopen(store: Any) -> Any:
    if store.backend == "vault":
        from ragdesk.core.store.sqlite import vault as vault_store

        return vault_store.unlock(store.home, PASSPHRASE)
    from tests.fakes.postgres import open_pg

    return open_pg(store.url)


def test_a_vault_chained_by_m004s_first_form_is_rechained(vault: Any) -> None:
    """m004's first form (a stored unique `seq`, JSON hashed) lived in the working tree for half
    an hour; a vault it made opens, is chained anew by m005 and takes new entries."""
    fill(vault)
    events = [e.event for e in reversed(vault.audit_events(1000))]
    with raw(vault) as db:
        for sql in ("DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete",
                    "DROP INDEX audit_log_checkpoints",
                    "CREATE TABLE interim (id INTEGER PRIMARY KEY, at REAL NOT NULL, event TEXT NOT NULL,"
                    " detail TEXT NOT NULL DEFAULT '{}', seq INTEGER NOT NULL UNIQUE,"
                    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
                    "INSERT INTO interim SELECT id, at, event, detail, id, prev_hash, 'json' FROM audit_log",
                    "DROP TABLE audit_log", "ALTER TABLE interim RENAME TO audit_log",
                    "DELETE FROM schema_migrations WHERE name = 'm005_audit_chain_by_row_id'",
                    "PRAGMA user_version = 4"):
            db.run(sql)
    vault.close()
    reopened = reopen(vault)
    try:
        verdict = reopened.verify_audit()
        assert verdict.ok, verdict.summary()
        assert [e.event for e in reversed(reopened.audit_events(1000))] == [*events, "vault opened"]
        reopened.audit("after")
        assert reopened.verify_audit().ok
    finally:
        reopened.close()
