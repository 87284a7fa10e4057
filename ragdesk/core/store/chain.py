"""The audit log's hash chain, the same in both stores: how an entry is hashed, how new entries are
linked to the head, and how a log is walked to find the first entry that was changed, deleted,
inserted or moved.

Append-only triggers stop mistakes, not a person holding the passphrase: they can drop them. So
every entry also carries a sequence number and a SHA-256 over its canonical content and the
previous entry's hash. Whoever rewrites an entry must recompute every hash after it; whoever does
that can also be caught, but only against a point kept outside the store: an *anchor* (`SEQ:HASH`
of the head, written down by the user, sent to a syslog). Without a secret there is nothing else
a chain can prove, and this module does not pretend otherwise (a keyed MAC would use the same
passphrase the tamperer has).

Retention prunes a prefix of the log and appends a *checkpoint* entry (CHECKPOINT_EVENT) that
records the last pruned entry's sequence number and hash: the log then starts after it, and
verification continues from the checkpoint's hash as if from the first entry. The checkpoint is
itself chained, so a forged start needs a rewritten chain (which an anchor catches).

Each backend keeps its SQL (sqlite/auditlog.py, postgres/auditlog.py); what is hashed and judged
is decided here once.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of entry 1
CHECKPOINT_EVENT = "audit log pruned"
RETENTION_SETTING = "audit_retention_days"  # null/absent: keep every entry
# The columns a walk reads, in this order (`Row`).
COLUMNS = "id, seq, at, event, detail, prev_hash, hash"
# How far around its place a moved entry is looked for (hashing is ~1 µs, so this stays cheap).
_MOVE_SEARCH = 5000

Row = tuple[int, int, float, str, str, str, str]  # id, seq, at, event, detail (JSON), prev, hash


@dataclass(frozen=True)
class Head:
    """A point of the chain: an entry's sequence number and hash (what an anchor records)."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """`SEQ:HASH` as `ragdesk audit anchor` prints it; ValueError with the reason otherwise."""
        match = re.fullmatch(r"\s*(\d+)\s*:\s*([0-9a-fA-F]{64})\s*", text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"an anchor is SEQ:HASH (a number, a colon, 64 hex digits), not {text!r}")
        return cls(int(match.group(1)), match.group(2).lower())


def canonical(seq: int, at: float, event: str, detail: str, prev_hash: str) -> bytes:
    """The bytes an entry's hash covers, one field a line: its number, its time (the float's
    shortest round-trip repr), its event and detail (the JSON text as stored), each UTF-8 with its
    byte length in front so no text can pass for another field, and the previous hash. (Built
    with %-formatting rather than json.dumps: half the cost of an entry's write.)"""
    e = event.encode("utf-8", "surrogatepass")
    d = detail.encode("utf-8", "surrogatepass")
    return b"%d\n%s\n%d:%s\n%d:%s\n%s" % (int(seq), repr(float(at)).encode(), len(e), e, len(d), d,
                                            prev_hash.encode("ascii", "replace"))


def entry_hash(seq: int, at: float, event: str, detail: str, prev_hash: str) -> str:
    return hashlib.sha256(canonical(seq, at, event, detail, prev_hash)).hexdigest()


def link(values: Iterable[tuple[float, str, str]], head: Head | None
         ) -> list[tuple[float, str, str, int, str, str]]:
    """(at, event, detail) rows made into chained rows (at, event, detail, seq, prev_hash, hash)
    that follow `head` (None: the log is empty)."""
    seq, prev = (head.seq, head.hash) if head is not None else (0, GENESIS)
    out = []
    for at, event, detail in values:
        seq += 1
        digest = entry_hash(seq, at, event, detail, prev)
        out.append((at, event, detail, seq, prev, digest))
        prev = digest
    return out


@dataclass(frozen=True)
class Pruned:
    """What a pruning removed and the checkpoint it left."""

    through: Head  # the last entry removed
    entries: int
    checkpoint: Head  # the checkpoint entry appended


def checkpoint_detail(through: Head, entries: int, before: float) -> dict[str, Any]:
    """The detail of a checkpoint entry: the last pruned entry, how many went, the cutoff."""
    return {"through_seq": through.seq, "through_hash": through.hash, "entries": entries,
            "older_than": when(before)}


def checkpoint_point(detail: str) -> Head | None:
    """The last pruned entry a checkpoint's detail (as stored) vouches for; None if unreadable."""
    try:
        data = json.loads(detail)
        return Head(int(data["through_seq"]), str(data["through_hash"]))
    except (ValueError, KeyError, TypeError):
        return None


def prune_point(rows_from_start: Iterable[tuple[int, float, str]], before: float) -> Head | None:
    """The last entry of the prefix older than `before`, from (seq, at, hash) rows in sequence
    order; None if the first entry is not older. Entries are pruned as a prefix only (an entry
    copied in by `ragdesk migrate` may carry an older time than the ones before it)."""
    last = None
    for seq, at, digest in rows_from_start:
        if at >= before:
            break
        last = Head(seq, digest)
    return last


def when(at: float) -> str:
    """A time as the log shows it: UTC, to the second."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """The first thing found wrong. `kind`: changed | deleted | inserted | reordered | truncated
    | anchor | guard; `seq` the entry it names (for `deleted`, the first missing one)."""

    kind: str
    seq: int | None
    message: str
    id: int | None = None


@dataclass
class Verdict:
    """What a walk of the log found. `ok` means every entry verified (and the anchor, if one was
    given, is in the log); `problem` names the first entry that does not."""

    count: int = 0  # entries walked and verified
    first_seq: int | None = None
    head: Head | None = None
    checkpoint: Head | None = None  # the pruned range's last entry the log continues from
    anchor: Head | None = None
    problem: Finding | None = None
    guards: bool = True  # the append-only triggers are in place
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_json(self) -> dict[str, Any]:
        problem = self.problem
        return {
            "ok": self.ok,
            "entries": self.count,
            "first_seq": self.first_seq,
            "head": str(self.head) if self.head else None,
            "head_seq": self.head.seq if self.head else None,
            "head_hash": self.head.hash if self.head else None,
            "continues_from_checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "anchor": str(self.anchor) if self.anchor else None,
            "append_only_guards": self.guards,
            "problem": None if problem is None else {
                "kind": problem.kind, "seq": problem.seq, "id": problem.id,
                "message": problem.message},
        }

    def summary(self) -> str:
        """One line for people: the count and head, or the first problem."""
        if self.problem is not None:
            return self.problem.message
        if self.head is None:
            return "the audit log is empty"
        entries = "1 entry" if self.count == 1 else f"{self.count} entries"
        text = f"audit log intact: {entries} ({self.first_seq}-{self.head.seq}), head {self.head}"
        if self.checkpoint is not None:
            text += f"; continues from the pruning checkpoint after entry {self.checkpoint.seq}"
        if self.anchor is not None:
            text += f"; anchor {self.anchor.seq} found"
        return text


def describe(row: Row) -> str:
    """An entry as a message names it: number, event, time and row id."""
    return f"entry {row[1]} ({row[3]!r} at {when(row[2])}, row id {row[0]})"


def _self_hash(row: Row, seq: int | None = None) -> str:
    _id, own_seq, at, event, detail, prev, _h = row
    return entry_hash(own_seq if seq is None else seq, at, event, detail, prev)


def _written_as(row: Row) -> int | None:
    """The sequence number an entry whose hash fails at its place was written with, if moving it
    there explains the failure (a reorder or a renumbering); None if its content changed."""
    seq = row[1]
    for delta in range(1, _MOVE_SEARCH):
        for candidate in (seq + delta, seq - delta):
            if candidate > 0 and _self_hash(row, candidate) == row[6]:
                return candidate
    return None


class _Peek:
    """An iterator of rows with one row of look-ahead."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self._it: Iterator[Row] = iter(rows)
        self._next: Row | None = None
        self._done = False

    def peek(self) -> Row | None:
        if self._next is None and not self._done:
            self._next = next(self._it, None)
            self._done = self._next is None
        return self._next

    def pop(self) -> Row | None:
        row = self.peek()
        self._next = None
        return row


def verify(rows: Iterable[Row], checkpoints: Sequence[Row] = (), anchor: Head | None = None,
           guards: bool = True) -> Verdict:
    """Walk `rows` (every entry, in (seq, id) order) and name the first problem.

    `checkpoints`: the checkpoint entries (CHECKPOINT_EVENT) in sequence order, read beforehand:
    a log that does not begin at entry 1 must begin right after the entry one of them vouches
    for, and that one must be part of the chain. `anchor`: a point kept outside the store that
    the log must still contain. `guards`: whether the append-only triggers are in place."""
    verdict = Verdict(anchor=anchor, guards=guards)
    peek = _Peek(rows)
    first = peek.peek()
    start, checkpoint = _start(first, checkpoints)
    expected, prev = start.seq + 1, start.hash
    checkpoint_walked = checkpoint is None
    problem: Finding | None = None
    if first is not None and _well_formed(first) and first[1] != expected:
        problem = _bad_start(first, start, checkpoint)
    while problem is None:
        row = peek.pop()
        if row is None:
            break
        if not _well_formed(row):
            problem = Finding("inserted", None, f"the row with id {row[0]} has no valid sequence"
                              " number or hash: it was inserted around the chain", row[0])
            break
        group = [row]
        while (nxt := peek.peek()) is not None and nxt[1] == row[1]:
            group.append(nxt)
            peek.pop()
        problem = _judge(group, expected, prev, peek)
        if problem is not None:
            break
        good = group[0]
        if verdict.first_seq is None:
            verdict.first_seq = good[1]
        verdict.count += 1
        verdict.head = Head(good[1], good[6])
        if checkpoint is not None and good[0] == checkpoint[0]:
            checkpoint_walked = True
        if anchor is not None and good[1] == anchor.seq and good[6] != anchor.hash:
            problem = Finding("anchor", good[1], f"{describe(good)} differs from the anchor"
                              f" {anchor}: the log was rewritten at or before entry {anchor.seq}",
                              good[0])
        expected, prev = good[1] + 1, good[6]
    if problem is None and checkpoint is not None and not checkpoint_walked:
        problem = Finding("inserted", checkpoint[1], f"the pruning checkpoint {describe(checkpoint)}"
                          " is not part of the chain (inserted)", checkpoint[0])
    if problem is None and checkpoint is not None and start.seq > 0:
        verdict.checkpoint = start
    if problem is None and anchor is not None:
        problem = _anchor_reached(verdict, anchor, start)
    if problem is None and not guards:
        problem = Finding("guard", None, "the audit log's append-only triggers are missing (dropped);"
                          " every entry still verifies, so nothing was changed through the chain")
    verdict.problem = problem
    return verdict


def _well_formed(row: Row) -> bool:
    """SQLite keeps any type in any column: a row typed by hand may hold text where a number goes."""
    _id, seq, at, event, detail, prev, digest = row
    return (isinstance(seq, int) and isinstance(at, int | float) and isinstance(event, str)
            and isinstance(detail, str) and isinstance(prev, str) and isinstance(digest, str))


def _start(first: Row | None, checkpoints: Sequence[Row]) -> tuple[Head, Row | None]:
    """Where the walk starts: entry 1's predecessor (GENESIS), or for a pruned log the point of
    the checkpoint that vouches for the entry before the first one kept. Checkpoints that vouch
    for something else (copied in from another store by `ragdesk migrate`, or older prunings)
    are ignored; when none vouches, the nearest earlier one names the missing range."""
    genesis = Head(0, GENESIS)
    if first is None or not _well_formed(first) or first[1] <= 1:
        return genesis, None
    before = Head(first[1] - 1, first[5])
    candidates = [(point, row) for row in checkpoints
                  if (point := checkpoint_point(row[4])) is not None and point.seq <= before.seq]
    exact = [(point, row) for point, row in candidates if point == before]
    if exact:
        return exact[-1]
    if candidates:
        return max(candidates, key=lambda pair: pair[0].seq)
    return genesis, None


def _bad_start(first: Row, start: Head, checkpoint: Row | None) -> Finding:
    expected = start.seq + 1
    if first[1] < expected:
        return Finding("inserted", first[1], f"{describe(first)} comes before the start of the log"
                       f" (entry {expected}): it was inserted", first[0])
    since = "the start" if checkpoint is None else f"the pruning checkpoint (entry {start.seq})"
    return Finding("deleted", expected, f"entries {expected}-{first[1] - 1} were deleted: the log"
                   f" begins at entry {first[1]}, but {since} says it begins at {expected}")


def _judge(group: Sequence[Row], expected: int, prev: str, peek: _Peek) -> Finding | None:
    """None when `group` (the rows claiming one sequence number) is the one expected entry."""
    row = group[0]
    seq = row[1]
    if seq > expected:
        return Finding("deleted", expected, f"entries {expected}-{seq - 1} were deleted: entry"
                       f" {expected - 1} is followed by {describe(row)}")
    fits = [r for r in group if _self_hash(r) == r[6] and r[5] == prev]
    if fits and len(group) > 1:
        extra = next(r for r in group if r is not fits[0])
        return Finding("inserted", seq, f"{describe(extra)} was inserted: another entry {seq}"
                       " belongs there", extra[0])
    if fits:
        return None
    if len(group) > 1:
        forged = next((r for r in group if _self_hash(r) != r[6]), group[-1])
        return Finding("inserted", seq, f"{describe(forged)} was inserted: it duplicates entry"
                       f" number {seq}", forged[0])
    if _self_hash(row) != row[6]:
        written = _written_as(row)
        if written is not None:
            after = peek.peek()
            shifted = after is not None and _written_as(after) == written + (after[1] - seq)
            if written > seq and (after is None or shifted):
                return Finding("deleted", seq, f"entries {seq}-{written - 1} were deleted and the"
                               f" later entries renumbered: {describe(row)} was written as entry"
                               f" {written}", row[0])
            if written < seq and row[5] != prev:
                return Finding("inserted", written, f"entries {written}-{seq - 1} were inserted"
                               f" before {describe(row)}, which was written as entry {written}",
                               row[0])
            return Finding("reordered", seq, f"{describe(row)} was moved: it was written as entry"
                           f" {written}", row[0])
        if row[5] != prev:
            return Finding("inserted", seq, f"{describe(row)} was inserted: neither its content nor"
                           " its link to the entry before matches the chain", row[0])
        return Finding("changed", seq, f"{describe(row)} was changed: its content no longer matches"
                       " its hash", row[0])
    # its own hash holds, but it was chained to another predecessor: the one before was rewritten
    # with a recomputed hash, or entries between were removed and the chain re-linked
    return Finding("changed", seq - 1, f"entry {seq - 1} was rewritten (its hash recomputed):"
                   f" {describe(row)} no longer follows it", row[0])


def _anchor_reached(verdict: Verdict, anchor: Head, start: Head) -> Finding | None:
    if anchor.seq <= start.seq and start.seq > 0:
        if anchor.seq == start.seq:
            if anchor.hash == start.hash:
                return None
            return Finding("anchor", anchor.seq, f"the pruning checkpoint records entry"
                           f" {anchor.seq} with another hash than the anchor {anchor}: the log was"
                           " rewritten")
        return Finding("anchor", anchor.seq, f"entry {anchor.seq} was pruned by retention (the"
                       f" log continues after entry {start.seq}), so the anchor cannot be checked;"
                       " take a new anchor after each pruning")
    if verdict.head is None or verdict.head.seq < anchor.seq:
        ends = f"ends at entry {verdict.head.seq}" if verdict.head else "is empty"
        return Finding("truncated", (verdict.head.seq + 1) if verdict.head else 1,
                       f"the log {ends}, but the anchor names entry {anchor.seq}: entries were"
                       " removed from its end (an older copy restored, or the log truncated)")
    return None
