"""The doctor's vocabulary: a check's outcome (`Check`), what the checks learn and pass on to
later ones (`Context`), and the remedy text several of them share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from ragdesk.core.store.postgres.health import Connection, Link

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

RESTORE_REMEDY = (
    "restore the latest backup: `ragdesk restore BACKUP_FOLDER --yes` (the damaged vault is kept"
    " aside); without a backup, create a new vault and index the documents again"
)
PASSPHRASE_REMEDY = "run again with RAGDESK_PASSPHRASE set, --passphrase-file FILE, or on a terminal"


@dataclass
class Check:
    name: str  # stable identifier, e.g. "vault.integrity"
    status: str  # pass | warn | fail | skip
    summary: str
    remedy: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def skipped(names: Iterable[str], reason: str, remedy: str = "") -> list[Check]:
    """The checks `names`, each skipped for `reason`."""
    return [Check(name, SKIP, f"skipped: {reason}", remedy) for name in names]


def schema_check(name: str, found: int, known: int, newer: str, older: str,
                 details: dict[str, Any] | None = None) -> Check:
    """The store's schema version against this release's: newer fails (`newer` says what to do),
    older warns (`older` says when it is upgraded)."""
    if found > known:
        return Check(name, FAIL, f"schema version {found} is newer than this release knows ({known})",
                     newer, details or {})
    if found < known:
        return Check(name, WARN, f"schema version {found}; this release uses {known}", older,
                     details or {})
    return Check(name, PASS, f"schema version {found} (current)", details=details or {})


@dataclass
class Context:
    """What the checks learn along the way and pass on to later ones."""

    home: Path
    passphrase: str | None
    ollama_host: str | None
    timeout: float
    vault_file: Path = field(init=False)
    has_vault: bool = False  # or, with a database, a RagDesk schema in it
    settings: dict[str, Any] = field(default_factory=dict)
    health: Any = None  # inspect.Health once the store was opened
    mismatched_documents: int = 0
    builtin_dimension: int | None = None
    database: str | None = None  # a PostgreSQL URL: its checks replace the vault's
    pg: Connection | None = None  # the connection the database checks share (postgres.health)
    pg_link: Link | None = None  # how it reached the server

    def __post_init__(self) -> None:
        from ragdesk.core.store.sqlite.keyfile import DB_NAME

        self.vault_file = self.home / DB_NAME

    @property
    def embedder_choice(self) -> dict[str, Any]:
        choice = self.settings.get("embedder") or {"kind": "builtin"}
        return choice if isinstance(choice, dict) else {"kind": "builtin"}


# One check, or several that share their work; its __name__ names it in the report if it crashes.
Step: TypeAlias = Callable[[Context], Check | list[Check]]
