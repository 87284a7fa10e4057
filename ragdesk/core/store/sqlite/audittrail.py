"""The vault's AuditLog role: the Store methods over its connections (the chain's SQL is in
auditlog.py, what is hashed and judged in core/store/chain.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from ragdesk.core.records import AuditEvent
from ragdesk.core.store import rowmap
from ragdesk.core.store.chain import Head, Pruned, Verdict
from ragdesk.core.store.sqlite import auditlog
from ragdesk.core.store.sqlite.connections import Connections
from ragdesk.core.store.sqlite.errors import sorted_errors


class AuditTrail(Connections):
    """The AuditLog role of the vault: chained, group-committed entries."""

    def audit(self, event: str, **detail: Any) -> None:
        self.audit_many([(time.time(), event, detail)])

    def audit_many(self, events: Sequence[tuple[float, str, dict[str, Any]]]) -> None:
        """Append many (time, event, detail) entries in one transaction (one disk sync, one read
        of the head)."""
        if not events:
            return
        with self._transaction() as db:
            auditlog.append(db, rowmap.audit_values(events))

    def audit_events(self, limit: int = 100) -> list[AuditEvent]:
        """The newest `limit` entries, newest first."""
        found = self._query(f"SELECT {rowmap.AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?",
                            (limit,))
        return [rowmap.audit_from_row(r) for r in found]

    def audit_since(self, since: float) -> Iterator[AuditEvent]:
        """Entries written at or after `since`, oldest first (`ragdesk audit export`)."""
        for row in auditlog.rows(self.db, "at >= ?", (since,)):
            yield rowmap.audit_from_row(row)

    def audit_head(self) -> Head | None:
        with sorted_errors():
            return auditlog.head(self.db)

    def verify_audit(self, anchor: Head | None = None) -> Verdict:
        with sorted_errors():
            return auditlog.verify(self.db, anchor)

    def prune_audit(self, before: float) -> Pruned | None:
        with self._transaction() as db:
            return auditlog.prune(db, before)
