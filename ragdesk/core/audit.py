"""The audit log's retention, as the services apply it: entries older than the store's setting
(`audit_retention_days`; absent or null keeps every entry) are pruned behind a checkpoint
(core/store/chain.py) whenever the services are built over a store."""

from __future__ import annotations

import logging
import time
from typing import Protocol

from ragdesk.core.store.base import AuditLog, Settings
from ragdesk.core.store.chain import RETENTION_SETTING, Pruned
from ragdesk.errors import RagdeskError

log = logging.getLogger("ragdesk.audit")

DAY = 86400.0


class RetainedLog(AuditLog, Settings, Protocol):
    """What retention needs of a store: its settings and its audit log."""


def apply_retention(store: RetainedLog, now: float | None = None) -> Pruned | None:
    """Prune by the store's retention setting; None when it keeps everything or nothing is old.
    A log that does not verify is left as it is (pruning would erase the evidence), with a
    warning: `ragdesk audit verify` and `doctor` report it."""
    days = store.get_setting(RETENTION_SETTING)
    if days is None:
        return None
    try:
        pruned = store.prune_audit((now or time.time()) - float(days) * DAY)
    except RagdeskError as exc:
        log.warning("audit retention not applied: %s", exc)
        return None
    if pruned is not None:
        log.info("pruned %d audit entries older than %s days (checkpoint %s)", pruned.entries, days,
                 pruned.checkpoint)
    return pruned
