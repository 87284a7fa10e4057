"""Documents indexed by an older release, read again in the background after an upgrade.

A release that changes how documents are cut into chunks marks the vault (the setting
`chunks_outdated_before`, written by its migration); `outdated_documents` lists what was indexed
before. On unlock their files are indexed again through the normal indexing path (progress in the
status bar, with a line saying why), while search and chat go on over the old chunks, each
document replaced whole when its new chunks are stored. A long update (many documents or many
bytes) is asked for first, in a notice that does not stop the user. Files no longer on disk keep
their old chunks: nothing is lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from ragdesk.core.indexing.pipeline import outdated_documents
from ragdesk.core.records import Document
from ragdesk.core.units import format_bytes
from ragdesk.gui.controllers.host import Host
from ragdesk.gui.controllers.indexing import IndexingController
from ragdesk.gui.notice import Notice
from ragdesk.gui.workers import WorkerPool

if TYPE_CHECKING:
    from ragdesk.app import Services

# Past either, the update is asked for first (a few minutes of reading at least).
ASK_DOCUMENTS = 200
ASK_BYTES = 500 * 1024 * 1024


@dataclass(frozen=True)
class Outdated:
    documents: list[Document]  # indexed by an older release, their files still on disk
    missing: int  # indexed by an older release, their files gone: they keep their old chunks
    size: int  # bytes to read again
    collections: dict[int, str]  # collection names by id (the library may not be loaded yet)

    @property
    def long(self) -> bool:
        return len(self.documents) > ASK_DOCUMENTS or self.size > ASK_BYTES


def find_outdated(store: Any) -> Outdated:
    """What an update would read again (runs on a worker: it looks at every file)."""
    docs = outdated_documents(store)
    present = [d for d in docs if os.path.isfile(d.path)]
    names = {c.id: c.name for c in store.collections()} if present else {}
    return Outdated(present, len(docs) - len(present), sum(d.size for d in present), names)


def update_note(n: int) -> str:
    return f"Updating {n} document{'s' if n != 1 else ''} for better search (indexed by an older version)"


class OutdatedController(QObject):
    """On unlock, finds the documents of an older release and has them indexed again."""

    def __init__(self, pool: WorkerPool, indexing: IndexingController, notice: Notice, host: Host,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.indexing = indexing
        self.notice = notice
        self.host = host
        self.services: Services | None = None
        self.found: Outdated | None = None
        notice.accepted.connect(self.update)
        notice.declined.connect(self._later)

    def attach(self, services: Services) -> None:
        self.services = services
        store = services.store
        self.pool.run(lambda: find_outdated(store), "find outdated documents", on_result=self._found,
                      on_error=self.host.report_error)

    def detach(self) -> None:
        self.services = None
        self.found = None
        self.notice.hide()

    def _found(self, found: Outdated) -> None:
        if self.services is None or not found.documents:
            return
        self.found = found
        if not found.long:
            self.update()
            return
        n = len(found.documents)
        self.notice.ask(
            f"{n} documents were indexed by an older version of RagDesk. Updating them improves search;"
            f" it reads their files again ({format_bytes(found.size)}) in the background, and search and"
            " chat keep working meanwhile.",
            "Update now", "Later",
            accept_tip="Read these documents again now, in the background",
            decline_tip="Keep their present index; you are asked again at the next unlock")

    def update(self) -> None:
        found, self.found = self.found, None
        if self.services is None or found is None or not found.documents:
            return
        by_collection: dict[str, list[str]] = {}
        for doc in found.documents:
            name = found.collections.get(doc.collection_id)
            if name is not None:  # (a collection removed meanwhile: nothing to update into)
                by_collection.setdefault(name, []).append(doc.path)
        note = update_note(sum(len(paths) for paths in by_collection.values()))
        for name, paths in by_collection.items():
            self.indexing.index_paths(paths, name, note)

    def _later(self) -> None:
        self.found = None
