"""The doctor's check of the audit log's hash chain (core/store/chain.py), for the vault and the
PostgreSQL store alike: the verdict of the walk as a pass, or a failure naming the first entry
changed, deleted, inserted or moved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ragdesk.cli.doctor.checks import FAIL, PASS, WARN, Check

if TYPE_CHECKING:
    from ragdesk.core.store.chain import Verdict

TAMPER_REMEDY = (
    "the log was changed outside RagDesk: copy the data folder aside as evidence first, then see"
    " what changed with `ragdesk audit export --since DATE` and compare with an anchor you kept"
    " (`ragdesk audit verify --anchor SEQ:HASH`)"
)


def audit_check(name: str, verdict: Verdict | None) -> Check:
    """`verdict` None: the store's log predates the chain (its next normal open chains it)."""
    if verdict is None:
        return Check(name, WARN, "the audit log is not hash-chained yet",
                     "it is chained automatically the next time the store is opened normally")
    details = verdict.to_json()
    if verdict.ok:
        return Check(name, PASS, verdict.summary(), details=details)
    return Check(name, FAIL, verdict.summary(), TAMPER_REMEDY, details)
